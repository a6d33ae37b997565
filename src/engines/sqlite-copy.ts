import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { commitFile, temporaryNameFor } from './durable-file.js';
import { createPrivateFile, modeOf, PRIVATE_FILE_MODE } from './private-file.js';
import type { SqliteCopyReply, SqliteCopyRequest } from './sqlite-copy-worker.js';

export interface CopyOutcome {
  bytes: number;
  seconds: number;
}

export interface CopyOptions {
  /**
   * Asked under the destination's write lock just before the copy replaces it:
   * a reason to call the copy off, or undefined to go ahead. A periodic copy
   * uses it to make sure the destination has not become the primary meanwhile.
   */
  guard?: () => Promise<string | undefined>;
  /** Bound on the copy and on the wait for the destination's lock (default 60 s). */
  timeoutMs?: number;
  /**
   * The copy is put in rollback-journal mode (journal_mode=DELETE) whatever its
   * source's: a secondary that WAL shipping follows takes its pages as hot journals.
   */
  rollbackJournal?: boolean;
}

/** The guard called the copy off: the destination was left as it was. */
export class CopyCancelled extends Error {}

/**
 * A consistent copy of a live SQLite database, through SQLite's online backup
 * API, written under a temporary name, fsynced, then renamed over `dest`:
 * whoever opens `dest` sees the old file or the whole new one, never a torn copy.
 *
 * A file path is copied in ONE backup step (one read transaction), so writers
 * to the source never make it start over (in the default steps of 100 pages a
 * busy primary of a few MB was never copied). A large file is copied in a
 * worker thread, so the event loop (probes, HA loop, /metrics) goes on; a small
 * one in this thread, which saves the ~50 ms a worker takes to start.
 *
 * The rename happens under the destination's write lock (when it is a database
 * that can be locked), after `options.guard` agreed: two copies into the same
 * file (a switchover's final copy, another process's periodic copy) never
 * interleave, and the one that comes second sees the first one's file.
 *
 * A connection passed as the source must not be inside a transaction (the
 * backup API copies nothing then); during a switchover the fence holds the
 * write lock on another connection, and the copy reads the last commit.
 */
export async function copySqliteDatabase(source: string | Database.Database, dest: string, options: CopyOptions = {}): Promise<CopyOutcome> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const sourceName = typeof source === 'string' ? source : source.name;
  const temporary = temporaryNameFor(dest);
  let lock: Database.Database | undefined;
  try {
    // Owner-only while it is written: SQLite would create it 0644 less the umask (0666 under umask 000).
    createPrivateFile(temporary);
    const progress =
      typeof source !== 'string'
        ? await source.backup(temporary)
        : sizeOf(source) + sizeOf(`${source}-wal`) > IN_THREAD_MAX_BYTES
          ? await copyInWorker({ source, temporary }, timeoutMs)
          : await copyInThread(source, temporary);
    if (progress.remainingPages !== 0 || progress.totalPages < 1 || !fs.existsSync(temporary)) {
      throw new Error(`the online copy of ${sourceName} did not complete (${progress.totalPages - progress.remainingPages} of ${progress.totalPages} pages)`);
    }
    const copy = new Database(temporary, { fileMustExist: true });
    try {
      const pages = copy.pragma('page_count', { simple: true }) as number;
      if (pages !== progress.totalPages) throw new Error(`the copy of ${sourceName} has ${pages} pages, the source ${progress.totalPages}`);
      // The copy takes the source's journal mode; a secondary in WAL mode reads like its primary.
      copy.pragma('wal_checkpoint(TRUNCATE)');
      if (options.rollbackJournal) copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
    lock = await lockDestination(dest, deadline);
    const cancelled = await options.guard?.();
    if (cancelled !== undefined) throw new CopyCancelled(`copy of ${sourceName} into ${dest} called off: ${cancelled}`);
    // The old file's WAL (or a journal WAL shipping left) must not be replayed onto the new one: gone before the rename.
    for (const side of ['-wal', '-shm', '-journal']) fs.rmSync(`${dest}${side}`, { force: true });
    // The copy takes the mode of the file it replaces (the application's choice), else its source's.
    fs.chmodSync(temporary, modeOf(dest) ?? modeOf(sourceName) ?? PRIVATE_FILE_MODE);
    commitFile(temporary, dest);
    return { bytes: fs.statSync(dest).size, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    removeTemporary(temporary);
    throw error;
  } finally {
    // The locked file was replaced: SQLite does not checkpoint or delete anything on closing a moved file.
    if (lock?.open) {
      if (lock.inTransaction) lock.exec('ROLLBACK');
      lock.close();
    }
  }
}

/** Up to this size a one-step copy blocks the event loop for a few tens of milliseconds at most. */
const IN_THREAD_MAX_BYTES = 8 * 1024 * 1024;

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

async function copyInThread(source: string, temporary: string): Promise<{ totalPages: number; remainingPages: number }> {
  const db = new Database(source, { readonly: true, fileMustExist: true, timeout: 1000 });
  try {
    return await db.backup(temporary, { progress: () => 0x7fffffff });
  } finally {
    db.close();
  }
}

function removeTemporary(temporary: string): void {
  for (const side of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${temporary}${side}`, { force: true });
}

/** Runs the backup in a worker; past `timeoutMs` rejects and leaves the worker to end (then removes its file). */
function copyInWorker(request: SqliteCopyRequest, timeoutMs: number): Promise<{ totalPages: number; remainingPages: number }> {
  return new Promise((resolve, reject) => {
    // A worker inside a better-sqlite3 call must not be terminated (that aborts the process): it is left to finish.
    const worker = new Worker(new URL('./sqlite-copy-worker.js', import.meta.url), { workerData: request });
    let settled = false;
    let timedOut = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      worker.unref();
      settle(() => reject(new Error(`the copy of ${request.source} took longer than ${timeoutMs / 1000} s`)));
    }, timeoutMs);
    worker.once('message', (reply: SqliteCopyReply) =>
      settle(() => (reply.ok ? resolve(reply) : reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {})))),
    );
    worker.once('error', (error) => settle(() => reject(error)));
    worker.once('exit', (code) => {
      if (timedOut) removeTemporary(request.temporary);
      settle(() => reject(new Error(`the copy worker exited (code ${code}) without an answer`)));
    });
  });
}

function inodeOf(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The destination's write lock (BEGIN IMMEDIATE, waited for off the event loop),
 * on the file that is at `dest` once the lock is held. Undefined when there is
 * nothing to lock: no file, or not a database (a broken secondary is replaced as is).
 */
async function lockDestination(dest: string, deadline: number): Promise<Database.Database | undefined> {
  for (;;) {
    const before = inodeOf(dest);
    if (before === undefined) return undefined;
    let db: Database.Database;
    try {
      db = new Database(dest, { fileMustExist: true, timeout: 0 });
    } catch {
      return undefined;
    }
    try {
      for (;;) {
        try {
          db.exec('BEGIN IMMEDIATE');
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'SQLITE_BUSY') {
            db.close();
            return undefined;
          }
          if (Date.now() > deadline) throw new Error(`${dest} stayed locked by another writer; the copy was not put in place`);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    } catch (error) {
      db.close();
      throw error;
    }
    if (inodeOf(dest) === before) return db;
    // Replaced while we waited for the lock: lock the file that is there now.
    db.exec('ROLLBACK');
    db.close();
  }
}
