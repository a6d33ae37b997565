/**
 * The SQLite write-ahead log, read without SQLite (https://www.sqlite.org/fileformat2.html#walformat):
 * a 32-byte header (magic, version, page size, checkpoint sequence, two salts, a
 * checksum of the first 24 bytes), then frames of a 24-byte header (page number,
 * database size after commit — non-zero only on a transaction's last frame —,
 * the header's salts, a checksum chained from the previous frame) and a page.
 *
 * A frame is valid when its salts are the header's and its cumulative checksum
 * matches; the log ends at the first frame that is not (SQLite reuses the file
 * after a restart, so stale frames of an older log lie beyond). Only frames up
 * to the last commit frame are a database state: the rest is a transaction
 * still being written.
 */
import fs from 'node:fs';

export const WAL_HEADER_BYTES = 32;
export const WAL_FRAME_HEADER_BYTES = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const WAL_VERSION = 3007000;

export interface WalHeader {
  /** The checksums are computed over big-endian words (magic 0x377f0683). */
  bigEndian: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** Checksum of the header's first 24 bytes: where the frames' chain starts. */
  checksum: [number, number];
}

/** Where a reader of one log stands: just after its last commit frame. */
export interface WalPosition {
  salt1: number;
  salt2: number;
  pageSize: number;
  bigEndian: boolean;
  /** Byte offset of the next frame to read (32 for an empty log). */
  offset: number;
  /** The cumulative checksum of the frame before `offset` (the header's at 32). */
  checksum: [number, number];
}

/** The header's fields, or why these 32 bytes are not a WAL header. */
export function parseWalHeader(bytes: Buffer): WalHeader | { problem: string } {
  if (bytes.length < WAL_HEADER_BYTES) return { problem: `the WAL is shorter than its header (${bytes.length} bytes)` };
  const magic = bytes.readUInt32BE(0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) return { problem: `the WAL header's magic is 0x${magic.toString(16)}` };
  const version = bytes.readUInt32BE(4);
  if (version !== WAL_VERSION) return { problem: `the WAL format version is ${version}, not ${WAL_VERSION}` };
  const pageSize = bytes.readUInt32BE(8) === 1 ? 65536 : bytes.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return { problem: `the WAL names an impossible page size (${pageSize})` };
  const bigEndian = magic === MAGIC_BE;
  const checksum = walChecksum(bigEndian, bytes.subarray(0, 24), [0, 0]);
  if (checksum[0] !== bytes.readUInt32BE(24) || checksum[1] !== bytes.readUInt32BE(28)) return { problem: 'the WAL header checksum does not match' };
  return { bigEndian, pageSize, checkpointSeq: bytes.readUInt32BE(12), salt1: bytes.readUInt32BE(16), salt2: bytes.readUInt32BE(20), checksum };
}

/** The start of a log: no frame read yet. */
export function startOf(header: WalHeader): WalPosition {
  return { salt1: header.salt1, salt2: header.salt2, pageSize: header.pageSize, bigEndian: header.bigEndian, offset: WAL_HEADER_BYTES, checksum: header.checksum };
}

/** SQLite's WAL checksum: over 32-bit words, two running sums, continued from `seed`. */
export function walChecksum(bigEndian: boolean, bytes: Buffer, seed: [number, number]): [number, number] {
  let s0 = seed[0];
  let s1 = seed[1];
  const words = bytes.length >>> 2;
  if (bigEndian) {
    for (let i = 0; i < words; i += 2) {
      s0 = (s0 + bytes.readUInt32BE(i * 4) + s1) >>> 0;
      s1 = (s1 + bytes.readUInt32BE(i * 4 + 4) + s0) >>> 0;
    }
  } else {
    for (let i = 0; i < words; i += 2) {
      s0 = (s0 + bytes.readUInt32LE(i * 4) + s1) >>> 0;
      s1 = (s1 + bytes.readUInt32LE(i * 4 + 4) + s0) >>> 0;
    }
  }
  return [s0, s1];
}

/** What was committed in a stretch of the log: the newest image of each page, and the database size after it. */
export interface CommittedRange {
  /** Page number -> byte offset of the page's data in the log (its newest committed frame in the range). */
  pages: Map<number, number>;
  /** Pages of the database after the range's last commit (0 when nothing was committed). */
  dbSize: number;
  frames: number;
  transactions: number;
  /** Just after the last commit frame; `from` when nothing was committed. */
  end: WalPosition;
  /** Valid frames after the last commit (a transaction being written, or a torn tail). */
  uncommittedFrames: number;
}

/**
 * Reads the committed frames of the log open at `fd` from `from` on. `limitBytes`
 * bounds one read (the rest is read next time): a range always ends on a commit.
 * `endOffset` stops the read there (a position already read: the archive's snapshot).
 */
export function readCommitted(fd: number, from: WalPosition, limitBytes = 64 * 1024 * 1024, endOffset = Infinity): CommittedRange {
  const frameBytes = WAL_FRAME_HEADER_BYTES + from.pageSize;
  const size = Math.min(fs.fstatSync(fd).size, endOffset);
  const range: CommittedRange = { pages: new Map(), dbSize: 0, frames: 0, transactions: 0, end: from, uncommittedFrames: 0 };
  let pending = new Map<number, number>();
  let pendingFrames = 0;
  let offset = from.offset;
  let checksum = from.checksum;
  const chunkFrames = Math.max(1, Math.floor((4 * 1024 * 1024) / frameBytes));
  const buffer = Buffer.alloc(chunkFrames * frameBytes);
  while (offset + frameBytes <= size) {
    const want = Math.min(buffer.length, Math.floor((size - offset) / frameBytes) * frameBytes);
    const got = fs.readSync(fd, buffer, 0, want, offset);
    const frames = Math.floor(got / frameBytes);
    if (frames === 0) break;
    for (let i = 0; i < frames; i++) {
      const frame = buffer.subarray(i * frameBytes, (i + 1) * frameBytes);
      if (frame.readUInt32BE(8) !== from.salt1 || frame.readUInt32BE(12) !== from.salt2) return finish();
      const next = walChecksum(from.bigEndian, frame.subarray(WAL_FRAME_HEADER_BYTES), walChecksum(from.bigEndian, frame.subarray(0, 8), checksum));
      if (next[0] !== frame.readUInt32BE(16) || next[1] !== frame.readUInt32BE(20)) return finish();
      checksum = next;
      pending.set(frame.readUInt32BE(0), offset + WAL_FRAME_HEADER_BYTES);
      pendingFrames++;
      offset += frameBytes;
      const commitSize = frame.readUInt32BE(4);
      if (commitSize !== 0) {
        for (const [page, at] of pending) range.pages.set(page, at);
        range.frames += pendingFrames;
        range.transactions++;
        range.dbSize = commitSize;
        range.end = { ...from, offset, checksum };
        pending = new Map();
        pendingFrames = 0;
        if (offset - from.offset >= limitBytes) return finish();
      }
    }
    if (got < want) break;
  }
  return finish();

  function finish(): CommittedRange {
    range.uncommittedFrames = pendingFrames;
    // Pages past the final size were cut off by the commit (a VACUUM, an incremental vacuum).
    for (const page of range.pages.keys()) if (page > range.dbSize) range.pages.delete(page);
    return range;
  }
}

/** Reads the log's header through `fd`: undefined for an empty log (none written since a truncation). */
export function readWalHeader(fd: number): WalHeader | { problem: string } | undefined {
  const bytes = Buffer.alloc(WAL_HEADER_BYTES);
  const got = fs.readSync(fd, bytes, 0, WAL_HEADER_BYTES, 0);
  if (got === 0) return undefined;
  return parseWalHeader(bytes.subarray(0, got));
}

/** True when `header` begins the same log as `position` (same salts: SQLite draws new ones on every restart). */
export function sameLog(header: WalHeader, position: WalPosition): boolean {
  return header.salt1 === position.salt1 && header.salt2 === position.salt2 && header.pageSize === position.pageSize;
}
