// Runs in a worker thread: better-sqlite3 is synchronous, and a database that is
// locked or on a hung disk must not stall the event loop that serves /metrics.
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { pagesOf, readSqliteFile, type SqliteFileState } from './sqlite-file.js';
import { USER_TABLES_SQL } from './sqlite-identities.js';
import type { SqliteObservation } from './sqlite-identity.js';

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
  /** Which file was there and what its header said (for the identity check), when it could be read. */
  observed?: SqliteObservation;
}

/** User tables whose first row a probe reads: their root pages, as an application's first query would. */
const TABLES_READ = 64;

interface Open {
  db: Database.Database;
  /** The main file and WAL as they were when it was opened. */
  key: string;
  reads: Database.Statement[] | undefined;
}

/** Connections kept between probes, each valid only while the files are exactly as they were. */
const open = new Map<string, Open>();

function walKey(file: string): string {
  try {
    const wal = fs.statSync(`${file}-wal`);
    return `${wal.dev}:${wal.ino}:${wal.size}:${wal.mtimeMs}`;
  } catch {
    return '-';
  }
}

const keyOf = (state: SqliteFileState, wal: string) =>
  `${state.dev}:${state.ino}:${state.birthtimeMs}:${state.size}:${state.mtimeMs}:${state.header && !('problem' in state.header) ? state.header.changeCounter : '-'}|${wal}`;

function connect(file: string, key: string, timeoutMs: number): Open {
  const cached = open.get(file);
  // A handle's page cache and the WAL index can keep answering for bytes that are no longer on disk:
  // any change to the main file or its WAL (a commit, a checkpoint, a replacement, an overwrite) means
  // a fresh open, which reads what a new application connection would read. An idle database keeps its connection.
  if (cached && cached.key === key) {
    cached.db.pragma(`busy_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
    return cached;
  }
  forget(file);
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: timeoutMs });
  const fresh: Open = { db, key, reads: undefined };
  open.set(file, fresh);
  return fresh;
}

function forget(file: string): void {
  open.get(file)?.db.close();
  open.delete(file);
}

/** Reads the schema and the first row of each user table (up to TABLES_READ): their root pages and a leaf. */
function readTables(connection: Open): number {
  const names = connection.db.prepare(USER_TABLES_SQL).pluck().all() as string[];
  connection.reads ??= names.slice(0, TABLES_READ).map((name) => connection.db.prepare(`SELECT 1 FROM "${name.replace(/"/g, '""')}" LIMIT 1`));
  for (const read of connection.reads) read.get();
  return names.length;
}

/**
 * A read-only connection that finds a hot journal it may not play back (a WAL-shipped
 * secondary in the microseconds between the sidecar placing a journal and SQLite playing
 * it back) gets SQLITE_READONLY_ROLLBACK: a moment of the sidecar's own apply, not a fault.
 */
const ROLLBACK_PENDING = 'SQLITE_READONLY_ROLLBACK';
const ROLLBACK_RETRIES = 5;
const pause = new Int32Array(new SharedArrayBuffer(4));

function probe(request: SqliteProbeRequest): SqliteProbeReply {
  for (let attempt = 1; ; attempt++) {
    const reply = probeOnce(request);
    if (reply.up || reply.code !== ROLLBACK_PENDING || attempt >= ROLLBACK_RETRIES) return withoutCode(reply);
    Atomics.wait(pause, 0, 0, 5 * attempt); // this worker's own thread: the event loop is not held
  }
}

function withoutCode({ code: _code, ...reply }: SqliteProbeReply & { code?: string }): SqliteProbeReply {
  return reply;
}

function probeOnce({ id, file, timeoutMs }: SqliteProbeRequest): SqliteProbeReply & { code?: string } {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let observed: SqliteObservation | undefined;
  try {
    const at = Date.now();
    const state = readSqliteFile(file);
    const header = state.header;
    observed = { at, dev: state.dev, ino: state.ino, born: state.birthtimeMs, pages: pagesOf(state), changeCounter: header && !('problem' in header) ? header.changeCounter : 0, tables: undefined };
    if (state.size === 0) {
      forget(file);
      return { id, up: false, seconds: elapsed(), error: `database file is empty (0 bytes): ${file}`, observed: { ...observed, tables: 0 } };
    }
    if (header && 'problem' in header) {
      forget(file);
      // Without a header there are no pages or change counter to judge the file's identity by: down as damaged.
      return { id, up: false, seconds: elapsed(), error: `not a SQLite database: ${header.problem}: ${file}` };
    }
    const connection = connect(file, keyOf(state, walKey(file)), timeoutMs);
    observed.tables = readTables(connection);
    return { id, up: true, seconds: elapsed(), sizeBytes: state.size + walSize(file), observed };
  } catch (error) {
    forget(file);
    if (error instanceof Error && !('code' in error) && /no such file/i.test(error.message)) {
      return { id, up: false, seconds: elapsed(), error: `database file not found: ${file}` };
    }
    const code = (error as { code?: string }).code;
    return { id, up: false, seconds: elapsed(), error: describe(error, file), ...(observed ? { observed } : {}), ...(code ? { code } : {}) };
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
    case 'ENOTFILE':
      return `not a regular file: ${file}`;
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
