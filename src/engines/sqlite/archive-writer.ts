/**
 * The archive's side of the WAL shipper (it runs in the shipper's worker
 * thread, on the ranges the shipper reads: one reader of the WAL, whoever
 * consumes it). Litestream's DB is the model: a generation starts with a
 * snapshot of the database at the shipper's position, and every later read
 * that found commits becomes one segment of that generation. Frames thus
 * always apply on top of a known snapshot.
 *
 * The snapshot needs no lock: the shipper's read transaction pins the WAL, so
 * the database file overlaid with the log's committed frames up to the
 * position is the database at the position, page for page (a checkpoint
 * running meanwhile copies only frames at or before it).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { commitFile, fsyncDir, temporaryNameFor } from '../durable-file.js';
import { ensurePrivateFolder, openPrivateFile } from '../private-file.js';
import { ARCHIVE_FOLDER, GENERATION_NAME, SNAPSHOT_NAME, generationKey, generationName, segmentName, type GenerationRecord } from './archive-layout.js';
import { encodeSegment } from './archive-segment.js';
import { readCommitted, readWalHeader, sameLog, startOf, type CommittedRange, type WalPosition } from './wal.js';

export interface ArchiveRequest {
  /** backup_dir (absolute): the archive goes under `<backup_dir>/<database>/archive/`. */
  root: string;
  database: string;
  /** A new generation (a new snapshot) once the current one is this old. */
  snapshotIntervalMs: number;
  /** Why a generation that starts now starts (only used when one does). */
  reason: string;
}

export interface ArchiveReport {
  generation: string | undefined;
  /** A generation started with this call. */
  opened?: { generation: string; reason: string; continues: string | null; snapshotBytes: number; snapshotSeconds: number };
  segment?: { key: string; bytes: number; committedMs: number; transactions: number };
  /** Writing failed: the generation is closed, the next call starts another. */
  error?: string;
}

/** What the shipper holds open: the files and where it stands. */
export interface ArchiveSource {
  dbFd: number;
  walFd: number;
  pageSize: number;
  position: WalPosition;
}

interface OpenGeneration {
  root: string;
  database: string;
  generation: string;
  startedMs: number;
  sequence: number;
}

export class ArchiveWriter {
  private open: OpenGeneration | undefined;

  /** Whatever is read next is not archived in this generation (continuity lost, archiving stopped). */
  close(): void {
    this.open = undefined;
  }

  /** Archives one read of the shipper (`seenAt`: the read's end), starting a generation first when none is open or the current one is due. */
  async record(request: ArchiveRequest, range: CommittedRange, images: ReadonlyMap<number, Buffer>, seenAt: number, source: () => ArchiveSource): Promise<ArchiveReport> {
    if (this.open && (this.open.root !== request.root || this.open.database !== request.database)) this.open = undefined;
    try {
      const current = this.open;
      if (!current) {
        // What this read found is in the snapshot taken after it.
        const opened = await this.start(request, source(), request.reason, null);
        return { generation: opened.generation, opened };
      }
      const report: ArchiveReport = { generation: current.generation };
      if (range.transactions > 0) report.segment = this.writeSegment(current, range, images, seenAt, source().pageSize);
      if (seenAt - current.startedMs >= request.snapshotIntervalMs) {
        const every = `${Math.round(request.snapshotIntervalMs / 1000)} s`;
        report.opened = await this.start(request, source(), `the generation was ${every} old (snapshot_interval)`, current.generation);
        report.generation = report.opened.generation;
      }
      return report;
    } catch (error) {
      this.open = undefined;
      return { generation: undefined, error: (error as Error).message };
    }
  }

  private writeSegment(open: OpenGeneration, range: CommittedRange, images: ReadonlyMap<number, Buffer>, seenAt: number, pageSize: number): ArchiveReport['segment'] {
    const sequence = open.sequence + 1;
    // Never before the generation's start, even with a clock stepped back: times order the window.
    const committedMs = Math.max(seenAt, open.startedMs);
    const { bytes, compressed } = encodeSegment(
      { database: open.database, generation: open.generation, sequence, committed_ms: committedMs, transactions: range.transactions, frames: range.frames, page_size: pageSize, db_pages: range.dbSize },
      images,
    );
    const key = generationKey(open.database, open.generation, segmentName(sequence, committedMs, compressed));
    writeDurably(path.join(open.root, ...key.split('/')), bytes);
    open.sequence = sequence;
    return { key, bytes: bytes.length, committedMs, transactions: range.transactions };
  }

  private async start(request: ArchiveRequest, source: ArchiveSource, reason: string, continues: string | null): Promise<NonNullable<ArchiveReport['opened']>> {
    this.open = undefined;
    const started = performance.now();
    const startedMs = Date.now();
    const generation = generationName(startedMs, randomBytes(2).toString('hex'));
    const archiveDir = path.join(request.root, request.database, ARCHIVE_FOLDER);
    const dir = path.join(archiveDir, generation);
    ensurePrivateFolder(dir);
    fsyncDir(archiveDir);
    const snapshotKey = generationKey(request.database, generation, SNAPSHOT_NAME);
    const snapshot = await writeSnapshot(path.join(dir, SNAPSHOT_NAME), source);
    const record: GenerationRecord = {
      format: 'dr-sidecar sqlite archive generation',
      version: 1,
      database: request.database,
      generation,
      started_at: new Date(startedMs).toISOString(),
      reason,
      continues,
      page_size: source.pageSize,
      snapshot: { key: snapshotKey, size_bytes: snapshot.bytes, sha256: snapshot.sha256, pages: snapshot.pages },
    };
    // Last: a generation without its record is a crash's leftover, never a start to restore from.
    writeDurably(path.join(dir, GENERATION_NAME), Buffer.from(`${JSON.stringify(record, null, 2)}\n`));
    this.open = { root: request.root, database: request.database, generation, startedMs, sequence: 0 };
    return { generation, reason, continues, snapshotBytes: snapshot.bytes, snapshotSeconds: (performance.now() - started) / 1000 };
  }
}

function writeDurably(file: string, bytes: Buffer): void {
  const temporary = temporaryNameFor(file);
  const fd = openPrivateFile(temporary);
  try {
    fs.writeSync(fd, bytes);
  } finally {
    fs.closeSync(fd);
  }
  try {
    commitFile(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** Pages read at a time for the snapshot: memory stays flat whatever the database's size. */
const SNAPSHOT_CHUNK_BYTES = 1 << 20;

/** The database at the source's position, gzipped into `file` (temporary name, fsync, rename). */
async function writeSnapshot(file: string, source: ArchiveSource): Promise<{ bytes: number; sha256: string; pages: number }> {
  const { dbFd, walFd, pageSize } = source;
  const overlay = walOverlay(walFd, source.position);
  const pages = overlay.dbPages || databaseFilePages(dbFd, pageSize);
  const perChunk = Math.max(1, Math.floor(SNAPSHOT_CHUNK_BYTES / pageSize));
  function* chunks(): Generator<Buffer> {
    for (let first = 1; first <= pages; first += perChunk) {
      const count = Math.min(perChunk, pages - first + 1);
      const chunk = Buffer.alloc(count * pageSize);
      fs.readSync(dbFd, chunk, 0, chunk.length, (first - 1) * pageSize);
      for (let page = first; page < first + count; page++) {
        const at = overlay.pages.get(page);
        if (at !== undefined) fs.readSync(walFd, chunk, (page - first) * pageSize, pageSize, at);
      }
      yield chunk;
    }
  }
  const temporary = temporaryNameFor(file);
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.from(chunks()), createGzip({ level: 1 }), tap, fs.createWriteStream(temporary, { fd: openPrivateFile(temporary) }));
    commitFile(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  return { bytes, sha256: hash.digest('hex'), pages };
}

/**
 * The newest committed image of each page in the log up to `position`, and
 * the database's size there (0: no commit in the log up to it, the file's
 * own header says). A log restarted since the position holds nothing of it:
 * a restart follows a complete checkpoint, so the file holds it all.
 */
function walOverlay(walFd: number, position: WalPosition): { pages: Map<number, number>; dbPages: number } {
  const header = readWalHeader(walFd);
  if (header === undefined || 'problem' in header || !sameLog(header, position)) return { pages: new Map(), dbPages: 0 };
  const range = readCommitted(walFd, startOf(header), Infinity, position.offset);
  if (range.end.offset !== position.offset) throw new Error(`the WAL no longer holds the frames read up to offset ${position.offset} (it ends at ${range.end.offset})`);
  return { pages: range.pages, dbPages: range.dbSize };
}

/** Pages of the database file by its header (valid when its version-valid-for matches its change counter), else by its size. */
function databaseFilePages(dbFd: number, pageSize: number): number {
  const head = Buffer.alloc(100);
  const got = fs.readSync(dbFd, head, 0, 100, 0);
  const size = fs.fstatSync(dbFd).size;
  if (got === 100 && head.readUInt32BE(92) === head.readUInt32BE(24) && head.readUInt32BE(28) > 0) return head.readUInt32BE(28);
  return Math.floor(size / pageSize);
}
