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

interface Open {
  db: Database.Database;
  /** dev, inode, size and mtime of the file when it was opened. */
  identity: string;
}

const identityOf = (stat: fs.Stats) => `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;

/** Connections kept between probes, each valid only while the path still names the same file. */
const open = new Map<string, Open>();

function connect(file: string, stat: fs.Stats, timeoutMs: number): Database.Database {
  const cached = open.get(file);
  // A file deleted, replaced or rewritten behind SQLite's back could still look healthy through
  // an open handle (its page cache, the WAL index): any change to the main file means a fresh open.
  // In WAL mode the main file changes only at checkpoints, so most probes reuse the connection.
  if (cached && cached.identity === identityOf(stat)) {
    cached.db.pragma(`busy_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
    return cached.db;
  }
  forget(file);
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: timeoutMs });
  open.set(file, { db, identity: identityOf(stat) });
  return db;
}

function forget(file: string): void {
  open.get(file)?.db.close();
  open.delete(file);
}

function probe({ id, file, timeoutMs }: SqliteProbeRequest): SqliteProbeReply {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return { id, up: false, seconds: elapsed(), error: `not a regular file: ${file}` };
    connect(file, stat, timeoutMs).prepare('SELECT count(*) FROM sqlite_schema').get();
    return { id, up: true, seconds: elapsed(), sizeBytes: stat.size + walSize(file) };
  } catch (error) {
    forget(file);
    if (error instanceof Error && !('code' in error) && /no such file/i.test(error.message)) {
      return { id, up: false, seconds: elapsed(), error: `database file not found: ${file}` };
    }
    return { id, up: false, seconds: elapsed(), error: describe(error, file) };
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
