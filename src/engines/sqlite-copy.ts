import fs from 'node:fs';
import Database from 'better-sqlite3';
import { commitFile, temporaryNameFor } from './durable-file.js';

export interface CopyOutcome {
  bytes: number;
  seconds: number;
}

/**
 * A consistent copy of a live SQLite database, through SQLite's online backup
 * API (readers and writers go on while it runs), written under a temporary
 * name, fsynced, then renamed over `dest`: whoever opens `dest` sees the old
 * file or the whole new one, never a torn copy.
 *
 * `source` may be an open connection, e.g. one that holds the write lock
 * during a switchover, so nothing can be written between copy and switch.
 */
export async function copySqliteDatabase(source: string | Database.Database, dest: string): Promise<CopyOutcome> {
  const started = performance.now();
  const db = typeof source === 'string' ? new Database(source, { readonly: true, fileMustExist: true, timeout: 5000 }) : source;
  const temporary = temporaryNameFor(dest);
  try {
    await db.backup(temporary);
    const copy = new Database(temporary);
    try {
      // The copy takes the source's journal mode; a secondary in WAL mode reads like its primary.
      copy.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      copy.close();
    }
    // The old file's WAL must not be replayed onto the new one: gone before the rename.
    for (const side of ['-wal', '-shm']) fs.rmSync(`${dest}${side}`, { force: true });
    commitFile(temporary, dest);
    return { bytes: fs.statSync(dest).size, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    for (const side of ['-wal', '-shm']) fs.rmSync(`${temporary}${side}`, { force: true });
    throw error;
  } finally {
    if (typeof source === 'string') db.close();
  }
}
