// Runs in a worker thread: better-sqlite3 is synchronous, and a database that is
// locked or on a hung disk must not stall the event loop that serves /metrics.
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface SqliteProbeRequest {
  id: number;
  file: string;
  timeoutMs: number;
}

export interface SqliteProbeReply {
  id: number;
  up: boolean;
  seconds: number;
  sizeBytes?: number;
  error?: string;
}

function probe({ id, file, timeoutMs }: SqliteProbeRequest): SqliteProbeReply {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let db: Database.Database | undefined;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return { id, up: false, seconds: elapsed(), error: `not a regular file: ${file}` };
    // Opened afresh each time: a file deleted or replaced under an open handle would still look healthy.
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: timeoutMs });
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    const seconds = elapsed();
    return { id, up: true, seconds, sizeBytes: stat.size + walSize(file) };
  } catch (error) {
    return { id, up: false, seconds: elapsed(), error: describe(error, file) };
  } finally {
    db?.close();
  }
}

function walSize(file: string): number {
  try {
    return fs.statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

function describe(error: unknown, file: string): string {
  const e = error as { code?: string; message?: string };
  switch (e.code) {
    case 'ENOENT':
      return `database file not found: ${file}`;
    case 'EACCES':
      return `permission denied: ${file}`;
    case 'SQLITE_NOTADB':
      return `not a SQLite database (corrupt header?): ${file}`;
    case 'SQLITE_CORRUPT':
      return `database disk image is malformed: ${file}`;
    case 'SQLITE_BUSY':
      return `database is locked: ${file}`;
    default:
      return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}`;
  }
}

parentPort?.on('message', (request: SqliteProbeRequest) => parentPort!.postMessage(probe(request)));
