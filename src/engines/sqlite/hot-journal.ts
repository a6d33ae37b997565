/**
 * Applying pages to a SQLite secondary with SQLite's own atomic commit: the pages
 * are written as a *hot rollback journal* (https://www.sqlite.org/fileformat2.html#rollbackjournal)
 * whose records hold the NEW images, and SQLite "rolls back" to them. SQLite's
 * public API has no way to write a page, but every connection that opens a
 * database with a hot journal beside it plays the journal back first, under an
 * EXCLUSIVE lock, fsyncs, and deletes the journal — and does it again if it dies
 * half-way. So a reader never sees half of an apply, and a sidecar killed in the
 * middle leaves a journal that the next reader finishes.
 *
 * The secondary is kept in rollback-journal mode (a WAL-mode database ignores a
 * journal), as a byte copy of the primary except page 1's file change counter:
 * the primary (WAL mode) does not raise it, but readers of a rollback-mode file
 * decide from it whether their page cache is stale, so every apply raises it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir, temporaryNameFor } from '../durable-file.js';
import { openPrivateFile } from '../private-file.js';

const JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
/** The journal header's own sector size: records start after one sector. */
const SECTOR = 512;

/** Page 1 as a rollback-mode secondary must hold it: legacy journal format, this change counter, this size. */
export function secondaryPageOne(page: Buffer, changeCounter: number, dbSize: number): Buffer {
  const out = Buffer.from(page);
  // Bytes 18 and 19: file format write/read version, 1 = rollback journal, 2 = WAL.
  out[18] = 1;
  out[19] = 1;
  out.writeUInt32BE(changeCounter >>> 0, 24);
  out.writeUInt32BE(dbSize, 28);
  // "Version-valid-for": the in-header size above is trusted only when this equals the change counter.
  out.writeUInt32BE(changeCounter >>> 0, 92);
  return out;
}

/** SQLite's journal record checksum: the nonce plus every 200th byte of the page, from the end. */
export function journalChecksum(nonce: number, page: Buffer): number {
  let sum = nonce >>> 0;
  for (let i = page.length - 200; i > 0; i -= 200) sum = (sum + page[i]!) >>> 0;
  return sum;
}

export function journalHeader(records: number, nonce: number, dbSize: number, pageSize: number): Buffer {
  const header = Buffer.alloc(SECTOR);
  JOURNAL_MAGIC.copy(header, 0);
  header.writeUInt32BE(records, 8);
  header.writeUInt32BE(nonce >>> 0, 12);
  header.writeUInt32BE(dbSize, 16);
  header.writeUInt32BE(SECTOR, 20);
  header.writeUInt32BE(pageSize, 24);
  return header;
}

/**
 * Writes the hot journal for `pages` (number -> image, page 1 included) and a
 * database of `dbSize` pages, under a temporary name, fsynced, then renamed to
 * `<db>-journal`: it appears whole or not at all. The caller holds the
 * database's RESERVED lock, so no one plays it back before the caller lets go.
 */
export function placeHotJournal(dbFile: string, pages: Iterable<[number, Buffer]>, count: number, dbSize: number, pageSize: number): void {
  const journal = `${dbFile}-journal`;
  const temporary = `${temporaryNameFor(dbFile)}-journal`;
  const nonce = (Math.random() * 0x100000000) >>> 0;
  // Owner-only: it holds pages of the database while it exists.
  const fd = openPrivateFile(temporary);
  try {
    let at = 0;
    const write = (bytes: Buffer) => {
      fs.writeSync(fd, bytes, 0, bytes.length, at);
      at += bytes.length;
    };
    write(journalHeader(count, nonce, dbSize, pageSize));
    const number = Buffer.alloc(4);
    const sum = Buffer.alloc(4);
    for (const [page, image] of pages) {
      if (image.length !== pageSize) throw new Error(`page ${page} has ${image.length} bytes, the page size is ${pageSize}`);
      number.writeUInt32BE(page);
      sum.writeUInt32BE(journalChecksum(nonce, image));
      write(Buffer.concat([number, image, sum]));
    }
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  fs.renameSync(temporary, journal);
  fsyncDir(path.dirname(journal));
}

/** True while a journal of ours waits beside `dbFile` (not played back yet). */
export function hotJournalWaiting(dbFile: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(`${dbFile}-journal`, 'r');
  } catch {
    return false;
  }
  try {
    const magic = Buffer.alloc(8);
    return fs.readSync(fd, magic, 0, 8, 0) === 8 && magic.equals(JOURNAL_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}
