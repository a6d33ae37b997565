import type pg from 'pg';
import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseConfig } from '../../config/load.js';
import type { Logger } from '../../log.js';
import { commitFile, fsyncDir, temporaryNameFor } from '../durable-file.js';
import { withClient, type PgTarget } from '../pg-client.js';
import { ensurePrivateFolder, writePrivateFile } from '../private-file.js';
import { archivePaths, finishedSegmentOf, slotNameFor, type ArchivePaths } from './archive-layout.js';
import { receiveWalReason, startReceiveWal, walWasRemoved, type ReceiveWal } from './pg-receivewal.js';
import { archiveRefusal, createSlot, dropSlot, readArchivePrivileges, readSlot, type ArchivePrivileges } from './replication-slot.js';
import { readSegmentTimes } from './segment-times.js';

export interface ArchiverSettings {
  backupDir: string;
  /** Seconds: a segment with commits in it is closed (pg_switch_wal) at most this long after it began. */
  segmentIntervalSeconds: number;
  /** The slot may make the primary keep at most this much WAL; past it the slot is dropped (a gap, logged critical). */
  maxSlotRetainedBytes: number;
  scrub: (text: string) => string;
}

/** What the metrics read of one archiver. */
export interface ArchiverReport {
  database: string;
  slot: string;
  slotRetainedBytes: number | undefined;
  lastSegmentAt: Date | undefined;
  slotDrops: number;
  running: boolean;
}

const TICK_MS = 250;
const SLOT_CHECK_MS = 2000;
const MAX_BACKOFF_MS = 10_000;

/**
 * Continuous archiving of one PostgreSQL primary: pg_receivewal streams into a
 * local spool through the sidecar's slot; each finished segment is read for
 * its commit times (recorded first), then linked into `archive/wal/` (final:
 * mirrored offsite). pg_receivewal is restarted when it dies; a slot whose WAL
 * the server no longer has is recreated and the hole recorded, never hidden.
 */
export class WalArchiver {
  readonly slot: string;
  private readonly paths: ArchivePaths;
  private receiver: ReceiveWal | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private moving = false;
  private lastSlotCheck = 0;
  private lastSwitch = { at: Date.now(), lsn: '' };
  private privileges: ArchivePrivileges | undefined;
  private backoffMs = 1000;
  readonly report: ArchiverReport;

  constructor(
    readonly db: DatabaseConfig,
    private readonly settings: ArchiverSettings,
    private readonly log: Logger,
  ) {
    this.slot = slotNameFor(db.name);
    this.paths = archivePaths(settings.backupDir, db.name);
    this.report = { database: db.name, slot: this.slot, slotRetainedBytes: undefined, lastSegmentAt: undefined, slotDrops: 0, running: false };
  }

  private get target(): PgTarget {
    if (this.db.target.engine !== 'postgresql') throw new Error(`${this.db.name} is not PostgreSQL`);
    return this.db.target;
  }

  start(): void {
    for (const dir of [path.dirname(this.paths.root), this.paths.root, this.paths.spool, this.paths.wal, this.paths.times, this.paths.events]) ensurePrivateFolder(dir);
    this.loop = this.run();
    this.ticker = setInterval(() => void this.tick(), TICK_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.ticker);
    this.receiver?.child.kill('SIGTERM');
    await this.loop;
    await this.moveFinished();
    this.report.running = false;
  }

  /** Prepares the slot, runs pg_receivewal, and again whenever it stops, with a growing pause. */
  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.prepare();
        this.receiver = startReceiveWal(this.target, this.paths.spool, this.slot);
        this.report.running = true;
        this.log.info({ database: this.db.name, slot: this.slot }, `archive: streaming the WAL of ${this.db.name} through slot ${this.slot}`);
        const code = await this.receiver.exited;
        this.report.running = false;
        if (this.stopped) return;
        const stderr = this.receiver.stderr();
        this.log.warn({ database: this.db.name, code }, this.settings.scrub(`archive: pg_receivewal for ${this.db.name} stopped (${code}): ${receiveWalReason(stderr)}`));
        if (walWasRemoved(stderr)) await this.recreateSlot(`pg_receivewal: ${receiveWalReason(stderr)}`);
      } catch (error) {
        this.report.running = false;
        this.log.error({ database: this.db.name }, this.settings.scrub(`archive of ${this.db.name}: ${(error as Error).message}`));
      }
      await this.pause(this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const until = Date.now() + ms;
      const check = setInterval(() => {
        if (this.stopped || Date.now() >= until) {
          clearInterval(check);
          resolve();
        }
      }, 50);
    });
  }

  /** Privileges, the server's own bound on slots, and the slot (lost: recreated, the hole recorded). */
  private async prepare(): Promise<void> {
    await withClient(this.target, 10_000, async (client) => {
      const p = await readArchivePrivileges(client);
      const refusal = archiveRefusal(this.db.name, this.target.user, p);
      if (refusal) throw new Error(refusal);
      if (!this.privileges) this.adviseOnce(p);
      this.privileges = p;
      await this.boundOnServer(client, p);
      const slot = await readSlot(client, this.slot);
      if (slot.walStatus === 'lost') {
        await this.recordHole(client, `replication slot ${this.slot} was invalidated by the server (it kept more WAL than max_slot_wal_keep_size)`);
      } else if (!slot.exists) {
        if (this.hasArchive()) this.recordEvent(`replication slot ${this.slot} was missing on the server and was created again`);
        this.clearSpool();
        await createSlot(client, this.slot);
      }
    });
    this.backoffMs = 1000;
  }

  private adviseOnce(p: ArchivePrivileges): void {
    if (!p.canSwitchWal) {
      this.log.warn(
        { database: this.db.name },
        `archive: role "${this.target.user}" may not run pg_switch_wal(), so a quiet primary's last commits reach the archive only when a segment fills ` +
          `(GRANT EXECUTE ON FUNCTION pg_switch_wal() TO "${this.target.user}")`,
      );
    }
  }

  /** The server enforces the bound even while the sidecar is down: max_slot_wal_keep_size, set when the role may, else advised. */
  private async boundOnServer(client: pg.Client, p: ArchivePrivileges): Promise<void> {
    const wantedMb = Math.max(1, Math.floor(this.settings.maxSlotRetainedBytes / 1048576));
    if (p.maxSlotWalKeepMb !== -1 && p.maxSlotWalKeepMb <= wantedMb) return;
    if (p.superuser) {
      await client.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '${wantedMb}MB'`);
      await client.query('SELECT pg_reload_conf()');
      this.log.warn({ database: this.db.name }, `archive: set max_slot_wal_keep_size = ${wantedMb}MB on the server of ${this.db.name}, so that a stopped sidecar cannot fill its disk`);
    } else if (p.maxSlotWalKeepMb === -1) {
      this.log.warn(
        { database: this.db.name },
        `archive: the server of ${this.db.name} has no max_slot_wal_keep_size: while the sidecar is stopped its slot keeps WAL without bound ` +
          `(ALTER SYSTEM SET max_slot_wal_keep_size = '${wantedMb}MB'; SELECT pg_reload_conf())`,
      );
    }
  }

  private hasArchive(): boolean {
    return fs.readdirSync(this.paths.wal).some((n) => finishedSegmentOf(n));
  }

  private async recreateSlot(reason: string): Promise<void> {
    await withClient(this.target, 10_000, (client) => this.recordHole(client, reason));
  }

  /** Drops and creates the slot, and empties the spool so pg_receivewal starts where the new slot does. */
  private async recordHole(client: pg.Client, reason: string): Promise<void> {
    this.log.error({ database: this.db.name, slot: this.slot }, `archive: the WAL archive of ${this.db.name} has a gap: ${reason}; the slot is created again, and moments after the gap need a new backup (disaster-recovery backup --database ${this.db.name})`);
    this.recordEvent(reason);
    await dropSlot(client, this.slot);
    this.clearSpool();
    await createSlot(client, this.slot);
  }

  private recordEvent(reason: string): void {
    const at = new Date();
    const file = path.join(this.paths.events, `${at.toISOString().replace(/[-:]/g, '')}.json`);
    const temporary = temporaryNameFor(file);
    writePrivateFile(temporary, `${JSON.stringify({ at: at.toISOString(), reason })}\n`);
    commitFile(temporary, file);
  }

  private clearSpool(): void {
    for (const name of fs.readdirSync(this.paths.spool)) fs.rmSync(path.join(this.paths.spool, name), { force: true });
  }

  private async tick(): Promise<void> {
    if (this.moving || this.stopped) return;
    this.moving = true;
    try {
      await this.moveFinished();
      if (Date.now() - this.lastSlotCheck >= SLOT_CHECK_MS) {
        this.lastSlotCheck = Date.now();
        await this.watchSlot();
      }
      if (this.privileges?.canSwitchWal && this.report.running && Date.now() - this.lastSwitch.at >= this.settings.segmentIntervalSeconds * 1000) await this.switchIfWritten();
    } catch (error) {
      this.log.error({ database: this.db.name }, this.settings.scrub(`archive of ${this.db.name}: ${(error as Error).message}`));
    } finally {
      this.moving = false;
    }
  }

  /**
   * Finished segments leave the spool for the archive: times record first
   * (a segment without one is still restorable), then a hard link (the file
   * pg_receivewal fsynced) and an fsync of the folder. The newest finished
   * segment stays in the spool too: pg_receivewal resumes after it.
   */
  private async moveFinished(): Promise<void> {
    const names = fs.readdirSync(this.paths.spool).sort();
    const finished = names.filter((n) => finishedSegmentOf(n) !== undefined);
    for (const name of names.filter((n) => /^[0-9A-F]{8}\.history$/.test(n))) this.linkInto(name);
    for (const name of finished) {
      const segment = finishedSegmentOf(name)!;
      const timesFile = path.join(this.paths.times, `${segment}.json`);
      if (!fs.existsSync(timesFile)) {
        const times = await readSegmentTimes(path.join(this.paths.spool, name), segment);
        const temporary = temporaryNameFor(timesFile);
        writePrivateFile(temporary, `${JSON.stringify(times)}\n`);
        commitFile(temporary, timesFile);
      }
      if (this.linkInto(name)) this.report.lastSegmentAt = new Date();
    }
    for (const name of finished.slice(0, -1)) fs.rmSync(path.join(this.paths.spool, name), { force: true });
  }

  private linkInto(name: string): boolean {
    const target = path.join(this.paths.wal, name);
    if (fs.existsSync(target)) return false;
    fs.linkSync(path.join(this.paths.spool, name), target);
    fsyncDir(this.paths.wal);
    return true;
  }

  /** Retained bytes for the metric, and the bound. */
  private async watchSlot(): Promise<void> {
    await withClient(this.target, 10_000, async (client) => {
      const slot = await readSlot(client, this.slot);
      this.report.slotRetainedBytes = slot.exists ? slot.retainedBytes : undefined;
      if (slot.exists && slot.retainedBytes > this.settings.maxSlotRetainedBytes) {
        this.report.slotDrops++;
        const mb = (slot.retainedBytes / 1048576).toFixed(0);
        // pg_receivewal stops first: the spool is emptied under no writer.
        this.receiver?.child.kill('SIGTERM');
        await this.receiver?.exited;
        await this.recordHole(client, `replication slot ${this.slot} held ${mb} MB of WAL, past the bound of ${(this.settings.maxSlotRetainedBytes / 1048576).toFixed(0)} MB, and was dropped`);
        return;
      }
    });
  }

  /** Closes the segment once the interval passed with WAL written since the last switch: a quiet primary's commits reach a final segment. */
  private async switchIfWritten(): Promise<void> {
    this.lastSwitch.at = Date.now();
    await withClient(this.target, 10_000, async (client) => {
      const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      if (rows[0]!.lsn === this.lastSwitch.lsn) return;
      const switched = await client.query<{ now: string }>('SELECT pg_switch_wal(), pg_current_wal_insert_lsn()::text AS now');
      this.lastSwitch = { at: Date.now(), lsn: switched.rows[0]!.now };
    });
  }
}
