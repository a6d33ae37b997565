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
 * The copy must come from a connection that is not inside a transaction
 * (the backup API copies nothing then); during a switchover the fence holds
 * the write lock on another connection, and this one reads the last commit.
 */
export async function copySqliteDatabase(source: string | Database.Database, dest: string): Promise<CopyOutcome> {
  const started = performance.now();
  const db = typeof source === 'string' ? new Database(source, { readonly: true, fileMustExist: true, timeout: 5000 }) : source;
  const temporary = temporaryNameFor(dest);
  try {
    const progress = await db.backup(temporary);
    if (progress.remainingPages !== 0 || progress.totalPages < 1 || !fs.existsSync(temporary)) {
      throw new Error(`the online copy of ${db.name} did not complete (${progress.totalPages - progress.remainingPages} of ${progress.totalPages} pages)`);
    }
    const copy = new Database(temporary, { fileMustExist: true });
    try {
      const pages = copy.pragma('page_count', { simple: true }) as number;
      if (pages !== progress.totalPages) throw new Error(`the copy of ${db.name} has ${pages} pages, the source ${progress.totalPages}`);
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
