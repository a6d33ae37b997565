// Runs in a worker thread: the online backup of a whole SQLite file in ONE step.
// In steps (better-sqlite3's default is 100 pages) the backup starts over whenever
// another connection commits to the source, so a large primary under a steady
// writer was never copied; one step holds one read transaction and always ends.
// A step is synchronous, hence the thread: the sidecar's event loop (probes, HA
// loop, /metrics) goes on while a large file is copied.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface SqliteCopyRequest {
  source: string;
  temporary: string;
}

export type SqliteCopyReply = { ok: true; totalPages: number; remainingPages: number } | { ok: false; message: string; code?: string };

async function copy({ source, temporary }: SqliteCopyRequest): Promise<SqliteCopyReply> {
  let db: Database.Database | undefined;
  try {
    db = new Database(source, { readonly: true, fileMustExist: true, timeout: 5000 });
    const progress = await db.backup(temporary, { progress: () => 0x7fffffff });
    // Flushed here, off the event loop: the caller's fsync before the rename then finds nothing to write.
    const fd = fs.openSync(temporary, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return { ok: true, totalPages: progress.totalPages, remainingPages: progress.remainingPages };
  } catch (error) {
    const e = error as { message?: string; code?: string };
    return { ok: false, message: e.message ?? String(error), ...(e.code ? { code: e.code } : {}) };
  } finally {
    db?.close();
  }
}

if (parentPort && workerData) parentPort.postMessage(await copy(workerData as SqliteCopyRequest));
