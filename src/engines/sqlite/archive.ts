/**
 * Continuous archiving of SQLite primaries (`backup.archive.enabled`), the
 * leader's: the WAL shipper that keeps secondaries current (replication.ts)
 * also writes what it reads as segments (archive-writer.ts, in its worker);
 * this side says whether and why, keeps the figures for metrics and status,
 * and applies retention. Litestream's Replica is the model.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { readArchive } from './archive-catalogue.js';
import { archivePrefix } from './archive-layout.js';
import { planArchiveRetention } from './archive-retention.js';
import type { ArchiveRequest } from './archive-writer.js';
import type { ShipOutcome } from './wal-shipper.js';

export interface SqliteArchiveSettings {
  enabled: boolean;
  /** backup_dir, absolute. */
  root: string;
  snapshotIntervalSeconds: number;
  retentionDays: number;
  /** The SQLite databases (names) whose archives status and metrics show. */
  databases: readonly string[];
}

/** What the WAL shipper asks before each read and tells after it. */
export interface ShipArchive {
  request(database: string): ArchiveRequest | undefined;
  absorb(database: string, shipped: ShipOutcome): void;
}

export interface ArchiveProgress {
  database: string;
  /** When the newest segment was seen committed (epoch ms); undefined before any. */
  lastSegmentMs: number | undefined;
  segments: number;
  bytes: number;
}

/** The folder (a listing of every segment) is re-read at most this often while segments arrive. */
const PROGRESS_READ_MS = 60_000;

export class SqliteArchive implements ShipArchive {
  private active = false;
  private readonly nextReason = new Map<string, string>();
  private readonly progressOf = new Map<string, ArchiveProgress>();
  private progressReadAt = 0;
  private lastError: string | undefined;
  private retention: Promise<void> = Promise.resolve();

  constructor(
    readonly settings: SqliteArchiveSettings,
    private readonly storage: Storage,
    private readonly log: Logger,
  ) {
    for (const database of settings.databases) this.progressOf.set(database, { database, lastSegmentMs: undefined, segments: 0, bytes: 0 });
  }

  /** Leader only: archiving follows the leadership. */
  start(): void {
    if (!this.settings.enabled || this.active) return;
    this.active = true;
    void this.readProgress().then(() => this.applyRetention());
  }

  async stop(): Promise<void> {
    this.active = false;
    await this.retention;
  }

  request(database: string): ArchiveRequest | undefined {
    if (!this.active) return undefined;
    return {
      root: this.settings.root,
      database,
      snapshotIntervalMs: this.settings.snapshotIntervalSeconds * 1000,
      reason: this.nextReason.get(database) ?? 'archiving began (sidecar start, leadership taken, or a new primary): nothing before it was followed',
    };
  }

  absorb(database: string, shipped: ShipOutcome): void {
    if (shipped.lost !== undefined) {
      this.nextReason.set(database, `continuity with ${database} was lost (${shipped.lost})`);
      return;
    }
    const report = shipped.archive;
    if (!report) return;
    if (report.error !== undefined) {
      if (this.lastError !== report.error) this.log.error({ database }, `disaster-recovery archive: writing the archive of ${database} failed: ${report.error}; a new generation starts`);
      this.lastError = report.error;
      this.nextReason.set(database, `the archive could not be written (${report.error})`);
      return;
    }
    this.lastError = undefined;
    const progress = this.progress(database);
    if (report.segment) {
      progress.lastSegmentMs = report.segment.committedMs;
      progress.segments++;
      progress.bytes += report.segment.bytes;
    }
    if (report.opened) {
      const o = report.opened;
      progress.bytes += o.snapshotBytes;
      this.nextReason.delete(database);
      this.log.info(
        { database, generation: o.generation, snapshot_bytes: o.snapshotBytes, seconds: o.snapshotSeconds },
        `disaster-recovery archive: new generation ${o.generation} of ${database} (${o.reason}); snapshot ${(o.snapshotBytes / 1048576).toFixed(1)} MiB in ${o.snapshotSeconds.toFixed(2)} s`,
      );
      void this.readProgress().then(() => this.applyRetention());
    } else if (report.segment && Date.now() - this.progressReadAt > PROGRESS_READ_MS) void this.readProgress();
  }

  progress(database: string): ArchiveProgress {
    let progress = this.progressOf.get(database);
    if (!progress) {
      progress = { database, lastSegmentMs: undefined, segments: 0, bytes: 0 };
      this.progressOf.set(database, progress);
    }
    return progress;
  }

  /** For the archive metrics (metrics/archive-metrics.ts): the same shape as the PostgreSQL archiver's. */
  archiverReports(): Array<{ database: string; slotRetainedBytes: undefined; slotDrops: number; lastSegmentAt: Date | undefined; segments: number; bytes: number }> {
    return [...this.progressOf.values()].map((p) => ({
      database: p.database,
      slotRetainedBytes: undefined,
      slotDrops: 0,
      lastSegmentAt: p.lastSegmentMs === undefined ? undefined : new Date(p.lastSegmentMs),
      segments: p.segments,
      bytes: p.bytes,
    }));
  }

  /** The newest archived commit per database, as the folder holds it (the last-segment gauge survives a restart). */
  async readProgress(): Promise<void> {
    this.progressReadAt = Date.now();
    for (const database of this.settings.databases) {
      try {
        const generations = await readArchive(this.storage, database);
        const progress = this.progress(database);
        const newest = Math.max(0, ...generations.flatMap((g) => g.segments.map((s) => s.committedMs)));
        if (newest > (progress.lastSegmentMs ?? 0)) progress.lastSegmentMs = newest;
      } catch (error) {
        this.log.warn({ database }, `disaster-recovery archive: reading the archive of ${database} failed: ${(error as Error).message}`);
      }
    }
  }

  /** Removes the generations no moment of the last retention_days needs (whole: a generation's segments need its snapshot). */
  applyRetention(now = new Date()): Promise<void> {
    const run = async () => {
      for (const database of this.settings.databases) {
        const generations = await readArchive(this.storage, database);
        const { remove } = planArchiveRetention(generations, now, this.settings.retentionDays);
        for (const name of remove) await this.removeGeneration(database, name);
        if (remove.length > 0) this.log.info({ database, removed: remove }, `disaster-recovery archive: retention removed ${remove.length} generation(s) of ${database} older than ${this.settings.retentionDays} days`);
      }
    };
    this.retention = this.retention.then(run).catch((error: unknown) => this.log.error(`disaster-recovery archive: retention failed: ${(error as Error).message}`));
    return this.retention;
  }

  private async removeGeneration(database: string, generation: string): Promise<void> {
    const prefix = `${archivePrefix(database)}${generation}/`;
    const objects = await this.storage.list(prefix);
    // The record first: a generation half removed is no longer one a restore would start from.
    const ordered = [...objects.filter((o) => o.key.endsWith('/generation.json')), ...objects.filter((o) => !o.key.endsWith('/generation.json'))];
    for (const object of ordered) await this.storage.delete(object.key);
    fs.rmSync(path.join(this.settings.root, ...prefix.split('/').filter(Boolean)), { recursive: true, force: true });
  }
}
