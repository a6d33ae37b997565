import fs from 'node:fs';

/** What the first 100 bytes of a SQLite file say, read without SQLite. */
export interface SqliteHeader {
  pageSize: number;
  /** Bytes 24..27: bumped by every transaction that writes page 1; SQLite never lowers it. */
  changeCounter: number;
  /** Bytes 28..31, trusted only when bytes 92..95 match the change counter (else undefined). */
  headerPages: number | undefined;
  /** Bytes 18-19 (file format write/read versions) are 2: the database is in WAL mode. */
  walMode: boolean;
}

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
export const HEADER_BYTES = 100;

/** The header's fields, or why these bytes are not the start of a SQLite database. */
export function parseSqliteHeader(bytes: Buffer): SqliteHeader | { problem: string } {
  if (bytes.length < HEADER_BYTES) return { problem: `the file is shorter than a SQLite header (${bytes.length} bytes)` };
  if (!bytes.subarray(0, 16).equals(MAGIC)) return { problem: 'its header does not start with "SQLite format 3" (overwritten or not a database)' };
  const raw = bytes.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return { problem: `its header names an impossible page size (${raw})` };
  const changeCounter = bytes.readUInt32BE(24);
  const pages = bytes.readUInt32BE(28);
  const validFor = bytes.readUInt32BE(92);
  return { pageSize, changeCounter, headerPages: pages > 0 && validFor === changeCounter ? pages : undefined, walMode: bytes[18] === 2 && bytes[19] === 2 };
}

/** The main file as the file system shows it right now: which file, how big, what its header says. */
export interface SqliteFileState {
  dev: number;
  ino: number;
  /** Creation time (statx btime), 0 where the file system does not keep one. */
  birthtimeMs: number;
  size: number;
  mtimeMs: number;
  /** Undefined for an empty file; a problem when the bytes are not a SQLite header. */
  header: SqliteHeader | { problem: string } | undefined;
}

/**
 * Stats the file, then reads its header through the same descriptor. Stat first:
 * a checkpoint that shrinks the file (after a VACUUM) writes page 1 before it
 * truncates, so a small size is never read together with an older header.
 */
export function readSqliteFile(file: string): SqliteFileState {
  const fd = fs.openSync(file, 'r');
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw Object.assign(new Error(`not a regular file: ${file}`), { code: 'ENOTFILE' });
    const state: SqliteFileState = { dev: stat.dev, ino: stat.ino, birthtimeMs: stat.birthtimeMs, size: stat.size, mtimeMs: stat.mtimeMs, header: undefined };
    if (stat.size === 0) return state;
    const bytes = Buffer.alloc(HEADER_BYTES);
    const read = fs.readSync(fd, bytes, 0, HEADER_BYTES, 0);
    state.header = parseSqliteHeader(bytes.subarray(0, read));
    return state;
  } finally {
    fs.closeSync(fd);
  }
}

/** Pages the main file holds (its size over the page size; 0 for an empty or unreadable one). */
export function pagesOf(state: SqliteFileState): number {
  if (!state.header || 'problem' in state.header) return 0;
  return Math.floor(state.size / state.header.pageSize);
}
