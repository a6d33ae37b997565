import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import type { DatabaseConfig } from '../config/load.js';
import { commitFile, fsyncFile, temporaryNameFor } from '../engines/durable-file.js';
import { createPrivateFile, modeOf, openPrivateFile, PRIVATE_FILE_MODE } from '../engines/private-file.js';
import { DrError } from '../errors.js';
import { CHUNK_BYTES, FileSystemError, fsError } from './backup-file.js';
import { ScratchUnavailableError, type Dump, type DumpProgress, type EngineBackup, type ScratchCheck, type TableCounts } from './engine-backup.js';

/** Pages per step of the backup API: a few milliseconds of work between turns of the event loop. */
const PAGES_PER_STEP = 1024;
const BUSY_TIMEOUT_MS = 10_000;

export const sqliteBackup: EngineBackup = {
  format: 'sqlite-database',
  dump: dumpSqlite,
  restore: restoreSqlite,
  async check(content: Readable, workDir: string): Promise<ScratchCheck> {
    const scratch = temporaryNameFor(path.join(workDir, 'verify.db'));
    try {
      await materialize(content, scratch).catch((error: unknown) => {
        throw error instanceof FileSystemError ? new ScratchUnavailableError(`cannot write a scratch copy: ${error.message}`) : error;
      });
      return { tables: inspect(scratch), detail: 'integrity_check ok' };
    } finally {
      removeWithJournals(scratch);
    }
  },
};

function fileOf(db: DatabaseConfig): string {
  if (db.target.engine !== 'sqlite') throw new DrError(`${db.name} is not a SQLite database`);
  return db.target.file;
}

/**
 * A consistent copy through SQLite's online backup API, taken inside a read
 * transaction opened first. Without that transaction each step of the backup
 * takes its own, and every write by another connection restarts the copy from
 * page 1: under a steady writer it never ends. With it, the copy is of one
 * snapshot, and in WAL mode writers go on meanwhile.
 */
async function dumpSqlite(db: DatabaseConfig, workDir: string, onProgress: (progress: DumpProgress) => void): Promise<Dump> {
  const file = fileOf(db);
  if (!fs.existsSync(file)) throw new DrError(`database file not found: ${file}`);
  const scratch = temporaryNameFor(path.join(workDir, `${path.basename(file)}.snapshot`));
  let source: Database.Database | undefined;
  let tables: TableCounts;
  let snapshotAt: Date;
  let sourceBytes: number;
  try {
    source = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    source.exec('BEGIN');
    source.prepare('SELECT count(*) FROM sqlite_schema').get();
    createPrivateFile(scratch); // a copy of the whole database: SQLite would create it 0644 less the umask
    snapshotAt = new Date();
    const pageSize = source.pragma('page_size', { simple: true }) as number;
    sourceBytes = (source.pragma('page_count', { simple: true }) as number) * pageSize;
    await source.backup(scratch, {
      progress: ({ totalPages, remainingPages }) => {
        onProgress({ phase: 'copy', doneBytes: (totalPages - remainingPages) * pageSize, totalBytes: totalPages * pageSize });
        return PAGES_PER_STEP;
      },
    });
    const copied = fs.statSync(scratch).size;
    if (copied !== sourceBytes) throw new DrError(`the copy of ${file} is ${copied} bytes, its snapshot ${sourceBytes}: incomplete`);
    tables = countRows(source);
    source.exec('COMMIT');
  } catch (error) {
    removeWithJournals(scratch);
    throw sqliteError(error, `copying ${file}`);
  } finally {
    source?.close();
  }
  const close = async () => removeWithJournals(scratch);
  return {
    content: fs.createReadStream(scratch, { highWaterMark: CHUNK_BYTES }),
    contentBytes: fs.statSync(scratch).size,
    snapshotAt,
    sourceBytes,
    finished: Promise.resolve(tables),
    close,
  };
}

/**
 * Writes the backup to a temporary file beside the live database, checks it,
 * then copies it into the live database with the backup API: one write
 * transaction, so readers see the old contents or the new, connections the
 * application holds stay valid, and a failure part-way rolls back. Only a live
 * file that is missing or not a database at all is replaced by a rename.
 */
async function restoreSqlite(db: DatabaseConfig, content: Readable): Promise<void> {
  const live = fileOf(db);
  const temporary = temporaryNameFor(live);
  try {
    await materialize(content, temporary);
    inspect(temporary);
    if (!(await copyInto(temporary, live))) replaceFile(temporary, live);
    checkpoint(live);
  } finally {
    removeWithJournals(temporary);
  }
}

/** The backup's content as a SQLite file at `file`, fsynced. */
async function materialize(content: Readable, file: string): Promise<void> {
  try {
    await pipeline(content, fs.createWriteStream(file, { fd: openPrivateFile(file), highWaterMark: CHUNK_BYTES }));
    fsyncFile(file);
  } catch (error) {
    throw fsError(error, `writing ${file}`);
  }
}

/** `PRAGMA integrity_check` must answer ok; returns the rows per table. */
function inspect(file: string): TableCounts {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    const problems = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new DrError(`integrity_check failed: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`);
    }
    return countRows(db);
  } catch (error) {
    throw sqliteError(error, `checking ${file}`);
  } finally {
    db?.close();
  }
}

/** Copies `from` over the live database in one transaction; false when `live` cannot be opened as a database. */
async function copyInto(from: string, live: string): Promise<boolean> {
  if (!fs.existsSync(live)) return false;
  const source = new Database(from, { fileMustExist: true });
  try {
    await source.backup(live, { progress: () => PAGES_PER_STEP });
    return true;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return false;
    throw sqliteError(error, `writing into ${live}`);
  } finally {
    source.close();
  }
}

/**
 * Moves the restored pages from the WAL into the main file, as far as readers allow: the
 * header there (what the sidecar's identity check reads) then says what the file holds.
 */
function checkpoint(live: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(live, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // The restore is done; a later checkpoint (any connection's) moves the pages.
  } finally {
    db?.close();
  }
}

/** The live file is unusable: the restored file takes its place; its stale WAL must not be replayed onto it. */
function replaceFile(temporary: string, live: string): void {
  // The database keeps the mode the application gave it; one the restore creates is the owner's only.
  fs.chmodSync(temporary, modeOf(live) ?? PRIVATE_FILE_MODE);
  for (const side of ['-wal', '-shm', '-journal']) fs.rmSync(`${live}${side}`, { force: true });
  commitFile(temporary, live);
}

/** Rows per ordinary table of an open SQLite database. */
export function countRows(db: Database.Database): TableCounts {
  const names = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL %' ORDER BY name")
    .pluck()
    .all() as string[];
  const counts: TableCounts = {};
  for (const name of names) {
    counts[name] = db.prepare(`SELECT count(*) FROM "${name.replace(/"/g, '""')}"`).pluck().get() as number;
  }
  return counts;
}

function removeWithJournals(file: string): void {
  for (const side of ['', '-journal', '-wal', '-shm']) fs.rmSync(`${file}${side}`, { force: true });
}

function sqliteError(error: unknown, doing: string): Error {
  if (error instanceof DrError) return error;
  const e = error as { code?: string; message?: string };
  const reasons: Record<string, string> = {
    SQLITE_NOTADB: 'not a SQLite database',
    SQLITE_CORRUPT: 'database disk image is malformed',
    SQLITE_BUSY: 'database is locked',
    SQLITE_FULL: 'no space left on device',
    SQLITE_CANTOPEN: 'cannot open the file',
    SQLITE_READONLY: 'the database is read-only',
  };
  const reason = e.code ? reasons[e.code] : undefined;
  if (reason) return new DrError(`${reason} while ${doing} (${e.code})`);
  if (e.code?.startsWith('E')) return fsError(error, doing);
  return new DrError(`${e.message ?? String(error)} while ${doing}`);
}
