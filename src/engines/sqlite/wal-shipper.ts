/**
 * Ships one SQLite primary's committed WAL frames to its secondaries, in the
 * spirit of Litestream's DB (db.go): synchronous, meant for a worker thread
 * (replicator-worker.ts), one instance per primary.
 *
 * - It holds a read transaction on the primary between calls. While it is held
 *   no checkpoint copies frames past its snapshot into the database file and no
 *   writer restarts the log, so every frame committed after the last read is
 *   still in the WAL at the next one: whatever the application's autocheckpoint
 *   or its own `wal_checkpoint(TRUNCATE)` does (the latter gets SQLITE_BUSY).
 * - It checkpoints itself (`rotate`): under the primary's write lock (no commit
 *   can slip in) it reads the log to its end, lets go of its snapshot, runs a
 *   PASSIVE checkpoint, takes a new snapshot, and lets writers go. A full
 *   checkpoint lets the next writer restart the log (salt-1 + 1, new salt-2):
 *   expected, and read from its start. Any other change of the log is a lost
 *   continuity, and the caller starts a new generation with a whole copy.
 * - It keeps the WAL file and the database file open: a primary deleted under
 *   the sidecar can still be read to its last commit for a failover.
 * - Each secondary gets every committed range as ONE hot journal (hot-journal.ts),
 *   which SQLite plays back atomically. A secondary that cannot take it now
 *   (locked by a reader) keeps the pages it misses in memory, merged, up to
 *   `maxPendingBytes`; past that it needs a whole copy. It never holds the
 *   others back, and never the primary's WAL.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { ArchiveWriter, type ArchiveReport, type ArchiveRequest, type ArchiveSource } from './archive-writer.js';
import { placeHotJournal, secondaryPageOne } from './hot-journal.js';
import { readCommitted, readWalHeader, sameLog, startOf, type CommittedRange, type WalPosition } from './wal.js';

export interface ShipperOptions {
  /** The primary's database file. */
  primary: string;
  /** How long to wait for a secondary's write lock (and for the primary's, to checkpoint). */
  lockTimeoutMs: number;
  /** Pages one stalled secondary may keep waiting in memory before it needs a whole copy. */
  maxPendingBytes: number;
  /** The WAL size past which the shipper checkpoints (the log is then restarted by the next writer). */
  walBoundBytes: number;
}

export interface ShipTarget {
  name: string;
  file: string;
}

export interface ShipRequest {
  targets: ShipTarget[];
  /** The primary is being replaced: read to its last commit, no checkpoint. */
  final?: boolean;
  /** Archive what is read (archive-writer.ts); without it, the archive's generation ends. */
  archive?: ArchiveRequest;
}

export type TargetStatus = 'applied' | 'behind' | 'needs-copy' | 'cancelled';

export interface TargetOutcome {
  name: string;
  status: TargetStatus;
  detail?: string;
  /** What it still misses (kept in memory for the next call). */
  pendingTransactions: number;
  pendingFrames: number;
}

export interface ShipOutcome {
  /** Epoch ms just before the WAL was read: every commit before it was in the range. */
  readAt: number;
  /** Undefined while the shipper follows the log; else why it cannot (a new generation is needed). */
  lost?: string;
  frames: number;
  transactions: number;
  /** Page bytes of the range (after keeping the newest image of each page). */
  pageBytes: number;
  walBytes: number;
  /** Valid frames after the last commit, not shipped (a transaction under way, or a torn tail). */
  uncommittedFrames: number;
  /** True when the primary's file has been deleted (still read through the descriptor held). */
  primaryDeleted: boolean;
  /** Set when this call checkpointed: whether the checkpoint copied the whole log. */
  checkpoint?: { complete: boolean };
  targets: TargetOutcome[];
  archive?: ArchiveReport;
}

export interface BeginOutcome {
  walMode: boolean;
  journalMode: string;
  walBytes: number;
}

interface Read {
  range: CommittedRange;
  images: Map<number, Buffer>;
}

interface Pending {
  pages: Map<number, Buffer>;
  bytes: number;
  dbSize: number;
  frames: number;
  transactions: number;
}

/** The secondary cannot take pages: it needs a whole copy (not a transient lock). */
class NeedsCopy extends Error {}

export class WalShipper {
  private reader: Database.Database | undefined;
  private writer: Database.Database | undefined;
  private dbFd: number | undefined;
  private walFd: number | undefined;
  private position: WalPosition | undefined;
  /** The last checkpoint copied the whole log: the next writer may restart it. */
  private expectRestart = false;
  private pageSize = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly archiver = new ArchiveWriter();

  constructor(
    private readonly options: ShipperOptions,
    /** Asked under a secondary's write lock right before its pages are put in place: a reason to call it off. */
    private readonly guard: (target: string) => Promise<string | undefined>,
  ) {}

  /** Starts a generation: a snapshot of the primary at the end of its log, everything before it to be copied whole. */
  begin(): BeginOutcome {
    this.close();
    const reader = new Database(this.options.primary, { fileMustExist: true, timeout: this.options.lockTimeoutMs });
    const journalMode = String(reader.pragma('journal_mode', { simple: true }));
    if (journalMode !== 'wal') {
      reader.close();
      return { walMode: false, journalMode, walBytes: 0 };
    }
    this.reader = reader;
    this.writer = new Database(this.options.primary, { fileMustExist: true, timeout: this.options.lockTimeoutMs });
    this.dbFd = fs.openSync(this.options.primary, 'r');
    this.pageSize = reader.pragma('page_size', { simple: true }) as number;
    this.rotate(this.options.lockTimeoutMs, true);
    return { walMode: true, journalMode, walBytes: fs.fstatSync(this.walFd!).size };
  }

  /** A secondary that will be copied whole: what it was waiting for no longer matters. */
  forget(target: string): void {
    this.pending.delete(target);
  }

  /** Reads what was committed since the last call and applies it to every target. */
  async ship(request: ShipRequest): Promise<ShipOutcome> {
    if (!this.reader || this.walFd === undefined || this.dbFd === undefined) throw new Error('the shipper has no generation: begin() first');
    const readAt = Date.now();
    // Gone from its path (deleted, or moved away), not replaced: what the descriptors hold is still the primary's.
    const primaryDeleted = statOrUndefined(this.options.primary) === undefined;
    const outcome: ShipOutcome = { readAt, frames: 0, transactions: 0, pageBytes: 0, walBytes: fs.fstatSync(this.walFd).size, uncommittedFrames: 0, primaryDeleted, targets: [] };
    const lost = primaryDeleted ? undefined : this.continuityProblem();
    if (lost !== undefined) {
      this.archiver.close();
      return { ...outcome, lost };
    }
    let read: Read | { lost: string } | undefined;
    if (!request.final && outcome.walBytes > this.options.walBoundBytes) {
      // A short wait: an application transaction holds the lock for long only rarely; the next call tries again.
      read = this.rotate(Math.min(this.options.lockTimeoutMs, 200), false);
      if (read !== undefined && !('lost' in read)) outcome.checkpoint = { complete: this.expectRestart };
    }
    // The last read of a primary being replaced goes to its end; others take at most 64 MB a call.
    read ??= this.readWithImages(request.final ? Infinity : undefined);
    if ('lost' in read) {
      this.archiver.close();
      return { ...outcome, lost: read.lost };
    }
    const { range, images } = read;
    // Before the secondaries: the archive delay is one read plus an fsync, whatever they do.
    if (request.archive) outcome.archive = await this.archiver.record(request.archive, range, images, Date.now(), () => this.archiveSource());
    else this.archiver.close();
    outcome.frames = range.frames;
    outcome.transactions = range.transactions;
    outcome.uncommittedFrames = range.uncommittedFrames;
    outcome.pageBytes = images.size * this.pageSize;
    for (const target of request.targets) outcome.targets.push(await this.applyTo(target, images, range));
    return outcome;
  }

  close(): void {
    for (const db of [this.reader, this.writer]) {
      if (!db?.open) continue;
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
    }
    // Descriptors after the connections: closing one drops the process's POSIX locks on the file.
    for (const fd of [this.walFd, this.dbFd]) if (fd !== undefined) fs.closeSync(fd);
    this.reader = this.writer = undefined;
    this.walFd = this.dbFd = undefined;
    this.position = undefined;
    this.expectRestart = false;
    this.pending.clear();
    this.archiver.close();
  }

  private archiveSource(): ArchiveSource {
    return { dbFd: this.dbFd!, walFd: this.walFd!, pageSize: this.pageSize, position: this.position! };
  }

  /** Why the files at the primary's paths are no longer the ones followed, if they are not. */
  private continuityProblem(): string | undefined {
    const held = fs.fstatSync(this.dbFd!);
    const there = statOrUndefined(this.options.primary);
    if (there && (there.ino !== held.ino || there.dev !== held.dev)) return `${this.options.primary} was replaced by another file`;
    const wal = fs.fstatSync(this.walFd!);
    const walThere = statOrUndefined(`${this.options.primary}-wal`);
    if (!walThere || walThere.ino !== wal.ino || walThere.dev !== wal.dev) return `the WAL of ${this.options.primary} was deleted or replaced`;
    return undefined;
  }

  /**
   * The checkpoint, under the primary's write lock: reads the log to its end,
   * moves the snapshot to it, and checkpoints in between. Undefined when the
   * lock could not be had (nothing changed; `initial` throws instead).
   */
  private rotate(lockWaitMs: number, initial: boolean): Read | { lost: string } | undefined {
    const writer = this.writer!;
    const reader = this.reader!;
    writer.pragma(`busy_timeout = ${Math.ceil(lockWaitMs)}`);
    try {
      writer.exec('BEGIN IMMEDIATE');
    } catch (error) {
      if (!initial && (error as { code?: string }).code === 'SQLITE_BUSY') return undefined;
      throw error;
    }
    try {
      // The WAL exists once a WAL-mode database has been read; the reader has read it.
      if (this.walFd === undefined) {
        if (!reader.inTransaction) this.snapshot();
        this.walFd = fs.openSync(`${this.options.primary}-wal`, 'r');
      }
      // Images are read before the lock is let go: a restarted log reuses the file from its start.
      // To the very end, whatever its size: frames left unread now would be checkpointed away.
      const read = initial ? this.scanToEnd() : this.readWithImages(Infinity);
      if ('lost' in read) return read;
      if (reader.inTransaction) reader.exec('ROLLBACK');
      const [result] = reader.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      this.snapshot();
      this.expectRestart = result !== undefined && result.busy === 0 && result.log === result.checkpointed;
      return read;
    } finally {
      writer.exec('ROLLBACK');
    }
  }

  /** A read transaction on the primary: the snapshot that pins the WAL. */
  private snapshot(): void {
    this.reader!.exec('BEGIN');
    this.reader!.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
  }

  /** At the start of a generation: the position after the last commit of the log as it is. */
  private scanToEnd(): Read | { lost: string } {
    this.position = undefined;
    const range = this.readOn(Infinity);
    if ('lost' in range) return range;
    range.pages.clear();
    return { range, images: new Map() };
  }

  private readWithImages(limitBytes?: number): Read | { lost: string } {
    const range = this.readOn(limitBytes);
    return 'lost' in range ? range : { range, images: this.images(range) };
  }

  /** The committed frames after the position, following an expected restart of the log. */
  private readOn(limitBytes?: number): CommittedRange | { lost: string } {
    const walFd = this.walFd!;
    const header = readWalHeader(walFd);
    const empty = (position: WalPosition | undefined): CommittedRange => ({ pages: new Map(), dbSize: 0, frames: 0, transactions: 0, end: position!, uncommittedFrames: 0 });
    if (header === undefined) {
      // Truncated by a checkpoint: only after a complete one of ours is nothing missed.
      if (this.position && this.position.offset > 32 && !this.expectRestart) return { lost: 'the WAL was truncated by another process' };
      this.expectRestart = true;
      return empty(this.position);
    }
    if ('problem' in header) return { lost: header.problem };
    if (header.pageSize !== this.pageSize) return { lost: `the WAL's page size ${header.pageSize} is not the database's ${this.pageSize}` };
    if (!this.position || !sameLog(header, this.position)) {
      const restartedAsExpected = !this.position || (this.expectRestart && header.salt1 === ((this.position.salt1 + 1) >>> 0));
      if (!restartedAsExpected) return { lost: 'the WAL was restarted by another process (a checkpoint the sidecar did not make)' };
      this.position = startOf(header);
    }
    const range = readCommitted(walFd, this.position, limitBytes);
    if (range.transactions > 0) this.expectRestart = false;
    this.position = range.end;
    return range;
  }

  /** The newest image of each page of the range, read from the WAL while the snapshot still pins it. */
  private images(range: CommittedRange): Map<number, Buffer> {
    const images = new Map<number, Buffer>();
    for (const [page, offset] of range.pages) {
      const image = Buffer.alloc(this.pageSize);
      fs.readSync(this.walFd!, image, 0, this.pageSize, offset);
      images.set(page, image);
    }
    return images;
  }

  private async applyTo(target: ShipTarget, images: Map<number, Buffer>, range: CommittedRange): Promise<TargetOutcome> {
    const waiting = this.merge(target.name, images, range);
    const summary = (status: TargetStatus, detail?: string): TargetOutcome => {
      const left = this.pending.get(target.name);
      return { name: target.name, status, ...(detail ? { detail } : {}), pendingTransactions: left?.transactions ?? 0, pendingFrames: left?.frames ?? 0 };
    };
    if (!waiting) return summary('applied');
    if (waiting.bytes > this.options.maxPendingBytes) {
      this.pending.delete(target.name);
      return summary('needs-copy', `it missed more than ${Math.round(this.options.maxPendingBytes / 1048576)} MB of pages while it could not be written`);
    }
    try {
      const done = await this.writePages(target, waiting);
      if (!done) return summary('cancelled', 'the plan no longer holds');
      this.pending.delete(target.name);
      return summary('applied');
    } catch (error) {
      if (error instanceof NeedsCopy) {
        this.pending.delete(target.name);
        return summary('needs-copy', error.message);
      }
      const code = (error as { code?: string }).code;
      return summary('behind', code === 'SQLITE_BUSY' ? `${target.file} is locked` : (error as Error).message);
    }
  }

  /** The target's pages still to write: what it missed before, overlaid with this range. */
  private merge(name: string, images: Map<number, Buffer>, range: CommittedRange): Pending | undefined {
    const before = this.pending.get(name);
    if (range.transactions === 0) return before;
    const merged: Pending = before ?? { pages: new Map(), bytes: 0, dbSize: 0, frames: 0, transactions: 0 };
    for (const [page, image] of images) {
      if (!merged.pages.has(page)) merged.bytes += image.length;
      merged.pages.set(page, image);
    }
    for (const page of merged.pages.keys()) {
      if (page > range.dbSize) {
        merged.pages.delete(page);
        merged.bytes -= this.pageSize;
      }
    }
    merged.dbSize = range.dbSize;
    merged.frames += range.frames;
    merged.transactions += range.transactions;
    this.pending.set(name, merged);
    return merged;
  }

  /**
   * One secondary transaction: under its RESERVED lock (readers go on reading
   * the old state), the guard is asked, the hot journal is put in place; once
   * the lock is let go, the next read — ours, right away — plays it back.
   * False when the guard called it off.
   */
  private async writePages(target: ShipTarget, waiting: Pending): Promise<boolean> {
    // Opened before the lock and closed after the connection: closing a descriptor drops the process's locks on the file.
    let fd: number;
    try {
      fd = fs.openSync(target.file, 'r');
    } catch (error) {
      throw new NeedsCopy(`${target.file} cannot be opened (${(error as Error).message})`);
    }
    const db = new Database(target.file, { fileMustExist: true, timeout: this.options.lockTimeoutMs });
    try {
      db.exec('BEGIN IMMEDIATE');
      const head = Buffer.alloc(this.pageSize);
      if (fs.readSync(fd, head, 0, this.pageSize, 0) < 100) throw new NeedsCopy(`${target.file} has no SQLite header`);
      const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
      if (pageSize !== this.pageSize) throw new NeedsCopy(`${target.file} has pages of ${pageSize} bytes, the primary ${this.pageSize}`);
      if (head[18] !== 1) throw new NeedsCopy(`${target.file} is not in rollback-journal mode (someone set its journal_mode)`);
      const pageOne = secondaryPageOne(waiting.pages.get(1) ?? head, head.readUInt32BE(24) + 1, waiting.dbSize);
      const refused = await this.guard(target.name);
      if (refused !== undefined) return false;
      const pages = [...waiting.pages].filter(([page]) => page !== 1).sort((a, b) => a[0] - b[0]);
      placeHotJournal(target.file, [[1, pageOne], ...pages], pages.length + 1, waiting.dbSize, this.pageSize);
      db.exec('ROLLBACK');
      try {
        db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
      } catch (error) {
        // The journal is in place and hot: the next reader plays it back. Busy readers only delay it.
        if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
      }
      return true;
    } finally {
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
      fs.closeSync(fd);
    }
  }
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}
