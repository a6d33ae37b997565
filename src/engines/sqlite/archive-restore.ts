/**
 * Point-in-time restore of a SQLite database from its archive, read through
 * the Storage interface (the local backup_dir or an offsite copy of it): the
 * nearest earlier snapshot, then the pages of every segment seen committed at
 * or before the time, written straight into a private file (what a checkpoint
 * does), which is then integrity-checked and counted.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import Database from 'better-sqlite3';
import type { ArchiveVerification, RestoreWindow } from '../../backup/point-in-time.js';
import type { TableCounts } from '../../backup/engine-backup.js';
import { countRows } from '../../backup/sqlite-backup.js';
import { DrError, InputError } from '../../errors.js';
import type { Storage } from '../../storage/storage.js';
import { openPrivateFile } from '../private-file.js';
import { readArchive, readRecord } from './archive-catalogue.js';
import { GENERATION_NAME, archivePrefix } from './archive-layout.js';
import { readSegment } from './archive-segment.js';
import { archiveView, pickRestore } from './archive-window.js';

export async function sqliteRestoreWindow(storage: Storage, database: string): Promise<RestoreWindow> {
  const { ranges, gaps } = archiveView(await readArchive(storage, database));
  return { database, engine: 'sqlite', ranges, gaps };
}

export interface SqliteRebuild {
  /** The snapshot started from (its key). */
  base: string;
  generation: string;
  segments: number;
  /** When the last segment applied was seen committed; undefined when none was (the snapshot alone). */
  lastTransactionAt: Date | undefined;
  tables: TableCounts;
}

/**
 * Writes the database as of `time` into `file` (a new file; removed again if
 * anything fails). An InputError, naming the window, for a time outside it.
 */
export async function rebuildAt(storage: Storage, database: string, time: Date, file: string): Promise<SqliteRebuild> {
  const pick = pickRestore(await readArchive(storage, database), time);
  if (typeof pick === 'string') throw new InputError(`cannot restore ${database} to ${time.toISOString()}: ${pick}`);
  const record = await readRecord(storage, `${archivePrefix(database)}${pick.generation.name}/${GENERATION_NAME}`);
  const fd = openPrivateFile(file);
  try {
    await copySnapshot(storage, record.snapshot.key, record.snapshot.sha256, fd);
    for (const segment of pick.segments) {
      const content = await storage.read(segment.key);
      const plain = segment.key.endsWith('.gz') ? content.pipe(createGunzip()) : content;
      const header = await readSegment(plain, (page, image) => {
        fs.writeSync(fd, image, 0, image.length, (page - 1) * image.length);
      }).catch((error: unknown) => {
        throw new DrError(`segment ${segment.key} in ${storage.name} cannot be applied: ${(error as Error).message}`);
      });
      if (header.generation !== pick.generation.name || header.sequence !== segment.sequence || header.page_size !== record.page_size) {
        throw new DrError(`segment ${segment.key} in ${storage.name} says it is segment ${header.sequence} of ${header.generation}; the archive is damaged`);
      }
      fs.ftruncateSync(fd, header.db_pages * header.page_size);
    }
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    removeDatabase(file);
    throw error;
  }
  fs.closeSync(fd);
  let tables: TableCounts;
  try {
    tables = checkDatabase(file);
  } catch (error) {
    removeDatabase(file);
    throw error;
  }
  const last = pick.segments.at(-1);
  return { base: record.snapshot.key, generation: pick.generation.name, segments: pick.segments.length, lastTransactionAt: last ? new Date(last.committedMs) : undefined, tables };
}

/**
 * The archive's proof: a restore into `scratch` to the newest moment of the
 * window (its snapshot and every segment of its generation: each checksum
 * read, the result integrity-checked and counted), and the gaps by time range.
 */
/** The archive proven by a restore to `at` (default: the newest moment of the window) into `scratch`. */
export async function verifySqliteArchive(storage: Storage, database: string, scratch: string, at?: Date): Promise<ArchiveVerification> {
  const window = await sqliteRestoreWindow(storage, database);
  const newest = window.ranges.at(-1);
  if (!newest) return { database, ok: false, detail: `no archive of ${database} in ${storage.name} yet`, gaps: window.gaps };
  const time = at ?? newest.to;
  try {
    const rebuilt = await rebuildAt(storage, database, time, scratch);
    const rows = Object.entries(rebuilt.tables).map(([t, n]) => `${t} ${n}`).join(', ') || 'no tables';
    const ranges = window.ranges.map((r) => `${r.from.toISOString()} .. ${r.to.toISOString()}`).join(', ');
    // As for PostgreSQL: a gap is a failure of the archive's promise (moments that cannot be restored), named by time range.
    const gaps = window.gaps.length > 0 ? `; ${window.gaps.length} gap(s) in the window` : '';
    return {
      database,
      ok: window.gaps.length === 0,
      detail: `restored to ${time.toISOString()} (generation ${rebuilt.generation}, ${rebuilt.segments} segment(s)): integrity_check ok; ${rows}; window ${ranges}${gaps}`,
      gaps: window.gaps,
    };
  } catch (error) {
    return { database, ok: false, detail: `a restore to ${time.toISOString()} failed: ${(error as Error).message}`, gaps: window.gaps };
  } finally {
    removeDatabase(scratch);
  }
}

async function copySnapshot(storage: Storage, key: string, sha256: string, fd: number): Promise<void> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  let at = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      fs.writeSync(fd, chunk, 0, chunk.length, at);
      at += chunk.length;
      done();
    },
  });
  const content: Readable = await storage.read(key);
  await pipeline(content, tap, createGunzip(), sink).catch((error: unknown) => {
    throw new DrError(`snapshot ${key} in ${storage.name} cannot be read: ${(error as Error).message}`);
  });
  const digest = hash.digest('hex');
  if (digest !== sha256) throw new DrError(`snapshot ${key} in ${storage.name} has sha256 ${digest}; its generation record says ${sha256}`);
}

function checkDatabase(file: string): TableCounts {
  const db = new Database(file, { fileMustExist: true });
  try {
    const problems = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    if (problems.length !== 1 || problems[0] !== 'ok') throw new DrError(`integrity_check of the restored database failed: ${problems.slice(0, 3).join('; ')}`);
    return countRows(db);
  } finally {
    db.close();
  }
}

export function removeDatabase(file: string): void {
  for (const side of ['', '-journal', '-wal', '-shm']) fs.rmSync(`${file}${side}`, { force: true });
}
