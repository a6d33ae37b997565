import fs from 'node:fs';
import { inSpan } from '../telemetry/tracing.js';
import type { Config, DatabaseConfig } from '../config/load.js';
import { DrError, InputError } from '../errors.js';
import type { Logger } from '../log.js';
import { removeLeftoversBeside } from '../engines/leftovers.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';
import { BackupSources, type FetchedBackup } from './backup-sources.js';
import { Catalogue, type CatalogueEntry } from './catalogue.js';
import { keyOfBackupFile } from './offsite-plan.js';
import type { DumpProgress } from './engine-backup.js';
import type { BackupTrigger } from './manifest.js';
import { validateBackupName } from './naming.js';
import { executeRestore, planRestore, type RestoreOptions, type RestoreOutcome, type RestorePlan, type RestoreRequest } from './restore.js';
import { pruneArchive } from './postgres-archive-prune.js';
import { planRetention } from './retention.js';
import { BackupSchedule } from './schedule.js';
import { takeBackup, type BackupRecord } from './take-backup.js';
import { verifyBackups, type VerifyResult } from './verify.js';

export interface BackupsDeps {
  config: Config;
  log: Logger;
  /** The database writes go to now: what a backup without `database` backs up. */
  currentPrimary: () => string | undefined;
  /** Removes secrets from text that came from outside (tool output, driver errors). */
  scrub: (text: string) => string;
  /** Offsite destinations, in config order: where restore and verify look for a backup the local folder lacks. */
  offsite?: Storage[];
  /** Told before and after a restore writes over a database (the SQLite identity's re-baseline). */
  restoring?: { begin(db: DatabaseConfig): Promise<void>; end(db: DatabaseConfig, restored: boolean): Promise<void> };
}

export type { BackupRecord } from './take-backup.js';

export interface BackupOutcome {
  database: string;
  result: 'success' | 'error';
  record?: BackupRecord;
  error?: string;
}

export interface CreateOptions {
  /** Default: the current primary. */
  database?: string;
  /** Default: "backup" ("scheduled" for the schedule's). */
  name?: string;
  trigger?: BackupTrigger;
  onProgress?: (progress: DumpProgress) => void;
}

/** Backups of the configured databases: create, prune, list, schedule; restore and verify build on these. */
export class Backups {
  readonly catalogue: Catalogue;
  /** The local folder, then each offsite destination: where backups are looked for. */
  readonly sources: BackupSources;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly listeners = new Set<(outcome: BackupOutcome) => void>();
  private readonly schedule: BackupSchedule;
  private abort = new AbortController();

  constructor(readonly deps: BackupsDeps) {
    this.catalogue = new Catalogue(deps.config.backup.backup_dir);
    this.sources = new BackupSources(new LocalStorage(deps.config.backup.backup_dir), deps.offsite ?? [], deps.log);
    this.schedule = new BackupSchedule({
      intervalSeconds: deps.config.backup.backup_interval,
      lastSuccessMs: () => this.lastSuccessMs(deps.currentPrimary()),
      run: () => this.scheduledBackup(),
      log: deps.log,
    });
  }

  /** Enabled databases, by priority. */
  databases(): DatabaseConfig[] {
    return this.deps.config.topology.enabled();
  }

  /** A configured, enabled database by name; without a name, the current primary. */
  database(name?: string): DatabaseConfig {
    const wanted = name ?? this.deps.currentPrimary();
    if (wanted === undefined) throw new InputError('no current primary to back up: name a database with --database');
    const db = this.databases().find((d) => d.name === wanted);
    if (db) return db;
    const known = this.databases().map((d) => d.name).join(', ') || 'none';
    const disabled = this.deps.config.topology.get(wanted) ? ' (it is disabled)' : '';
    throw new InputError(`unknown database "${wanted}"${disabled}; enabled databases: ${known}`);
  }

  onOutcome(listener: (outcome: BackupOutcome) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Takes a backup, then applies retention to the database's backups. */
  async create(options: CreateOptions = {}): Promise<BackupRecord> {
    const name = validateBackupName(options.name ?? 'backup');
    const db = this.database(options.database);
    return this.exclusive(db.name, async () => {
      const record = await this.createUnlocked(db, name, options.trigger ?? 'manual', options.onProgress);
      try {
        this.prune(db.name);
      } catch (error) {
        this.deps.log.error({ database: db.name }, this.deps.scrub(`backup retention of ${db.name} failed: ${(error as Error).message}`));
      }
      return record;
    });
  }

  /**
   * Takes a backup without retention or lock (the caller holds the database's
   * lock): the restore's safety backup, which must not prune the backup
   * being restored. Every outcome is counted and logged.
   */
  createUnlocked(db: DatabaseConfig, name: string, trigger: BackupTrigger, onProgress?: (p: DumpProgress) => void): Promise<BackupRecord> {
    return inSpan('backup', { 'dr.database': db.name, 'db.system': db.target.engine, 'dr.trigger': trigger }, async (span) => {
      const record = await this.take(db, name, trigger, onProgress);
      span.setAttributes({ 'dr.backup.size_bytes': record.size_bytes, 'dr.backup.compression': record.compression ?? 'none' });
      return record;
    });
  }

  private async take(db: DatabaseConfig, name: string, trigger: BackupTrigger, onProgress?: (p: DumpProgress) => void): Promise<BackupRecord> {
    const started = performance.now();
    try {
      this.cleanLeftovers(db.name);
      const record = await takeBackup(
        { catalogue: this.catalogue, compress: this.deps.config.backup.enable_compression, archived: this.deps.config.backup.archive.enabled, signal: this.abort.signal },
        { db, name, trigger, started, onProgress },
      );
      const mib = (record.size_bytes / 1048576).toFixed(1);
      this.deps.log.info(
        { database: db.name, file: record.path, size_bytes: record.size_bytes, sha256: record.sha256, duration_seconds: record.duration_seconds, trigger },
        `backup of ${db.name} written to ${record.path} (${mib} MiB in ${record.duration_seconds.toFixed(2)} s)`,
      );
      this.emit({ database: db.name, result: 'success', record });
      return record;
    } catch (error) {
      const message = this.deps.scrub(`backup of ${db.name} failed: ${(error as Error).message ?? String(error)}`);
      this.deps.log.error({ database: db.name, trigger }, message);
      this.emit({ database: db.name, result: 'error', error: message });
      throw error instanceof InputError ? error : new DrError(message);
    }
  }

  /**
   * A backup named by a file that is not in the local folder (the folder was
   * lost), found on an offsite destination (in config order) and fetched into a
   * private temporary folder with its checksum checked; undefined when the
   * file is local or no destination has it. The caller releases it.
   */
  async fetchOffsite(file: string): Promise<FetchedBackup | undefined> {
    if (this.sources.offsite.length === 0 || fs.existsSync(file)) return undefined;
    const key = keyOfBackupFile(file, this.deps.config.backup.backup_dir, this.sources.offsite.map((d) => d.name));
    const found = key === undefined ? undefined : await this.sources.find(key, { skipLocal: true });
    return found ? this.sources.fetch(found) : undefined;
  }

  /** Checks a restore without touching anything (file, place, manifest, engine): what to confirm. */
  planRestore(request: RestoreRequest): RestorePlan {
    return planRestore(this, request);
  }

  /** Checksum, safety backup, then the restore itself. */
  restore(plan: RestorePlan, options: RestoreOptions = {}): Promise<RestoreOutcome> {
    return inSpan('restore', { 'dr.database': plan.target.name, 'db.system': plan.target.target.engine }, () => executeRestore(this, plan, options));
  }

  /** Proves backups restore: one file, or every backup when `file` is undefined. */
  verify(file?: string, onResult?: (result: VerifyResult) => void): Promise<VerifyResult[]> {
    return inSpan('verify', { 'dr.backups': file === undefined ? 'all' : 'one' }, async (span) => {
      const results = await verifyBackups(this, file, onResult);
      span.setAttributes({ 'dr.verified': results.length, 'dr.failed': results.filter((r) => !r.ok).length });
      return results;
    });
  }

  /** Applies `max_backups` and `retention_days` to a database's backups; returns what it removed. */
  prune(database: string, now = new Date()): CatalogueEntry[] {
    // Base backups follow the archive's retention (every moment of retention_days restorable), not max_backups.
    const entries = this.catalogue.list(database).filter((e) => e.manifest && e.manifest.format !== 'postgresql-base');
    const byId = new Map(entries.map((e) => [e.path, e]));
    const plan = planRetention(
      entries.map((e) => ({ id: e.path, createdAt: new Date(e.manifest!.created_at), good: e.problem === undefined })),
      { maxBackups: this.deps.config.backup.max_backups, retentionDays: this.deps.config.backup.retention_days },
      now,
    );
    const removed = plan.remove.map((r) => byId.get(r.id)!);
    for (const entry of removed) this.catalogue.remove(entry);
    const archive = pruneArchive(this.catalogue, database, this.deps.config.backup.retention_days, now);
    removed.push(...archive.backups);
    if (archive.segments > 0) this.deps.log.info({ database, segments: archive.segments }, `archive retention removed ${archive.segments} WAL segment(s) of ${database}`);
    if (removed.length > 0) {
      this.deps.log.info(
        { database, removed: removed.map((e) => e.path) },
        `backup retention removed ${removed.length} backup(s) of ${database}, kept ${plan.keep.length}`,
      );
    }
    return removed;
  }

  /** Every catalogued backup (and stray file) of one database or of all. */
  list(database?: string): CatalogueEntry[] {
    return database === undefined ? this.catalogue.listAll() : this.catalogue.list(database);
  }

  newestGood(database: string): BackupRecord | undefined {
    const entry = this.catalogue.newestGood(database);
    return entry ? { ...entry.manifest!, path: entry.path } : undefined;
  }

  /** The newest good backup of any enabled database. */
  lastBackup(): BackupRecord | undefined {
    const readable = (database: string) => {
      try {
        return this.newestGood(database);
      } catch {
        return undefined; // an unreadable folder has no good backup to show
      }
    };
    const newest = this.databases()
      .map((d) => readable(d.name))
      .filter((r) => r !== undefined);
    return newest.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at))[0];
  }

  /**
   * Removes what crashed backups left in a database's folder, and what a killed
   * restore (or periodic copy) left beside a SQLite database's own file.
   */
  cleanLeftovers(database: string): string[] {
    const removed = [...this.catalogue.cleanLeftovers(database), ...this.sources.cleanLeftovers()];
    if (removed.length > 0) this.deps.log.warn({ database, removed }, `backup leftovers of an interrupted backup removed: ${removed.join(', ')}`);
    const db = this.deps.config.topology.get(database);
    const beside = db?.target.engine === 'sqlite' ? removeLeftoversBeside(db.target.file) : [];
    if (beside.length > 0) {
      this.deps.log.warn({ database, removed: beside }, `leftovers of an interrupted restore or copy of ${database} removed: ${beside.join(', ')}`);
    }
    return [...removed, ...beside];
  }

  /** Runs `fn` while no other operation of this process works on `database`. */
  async exclusive<T>(database: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(database) ?? Promise.resolve();
    let release!: () => void;
    const mine = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.locks.set(database, mine);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(database) === mine) this.locks.delete(database);
    }
  }

  busy(database: string): boolean {
    return this.locks.has(database);
  }

  /** Starts the schedule (`enable_auto_backup`), after removing leftovers of crashed backups and restores. */
  startSchedule(): void {
    for (const db of this.databases()) {
      try {
        this.cleanLeftovers(db.name);
      } catch (error) {
        this.deps.log.error({ database: db.name }, this.deps.scrub(`leftovers of ${db.name} could not be removed: ${(error as Error).message}`));
      }
    }
    if (this.deps.config.backup.enable_auto_backup) this.schedule.start();
  }

  /** Stops the schedule and any backup under way (its temporary files are removed). */
  async stop(): Promise<void> {
    this.schedule.stop();
    this.abort.abort();
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
    this.abort = new AbortController();
  }

  private lastSuccessMs(database: string | undefined): number | undefined {
    if (database === undefined) return undefined;
    const newest = this.newestGood(database);
    return newest ? Date.parse(newest.created_at) : undefined;
  }

  private async scheduledBackup(): Promise<boolean> {
    const primary = this.deps.currentPrimary();
    if (primary === undefined) {
      this.deps.log.warn('scheduled backup skipped: there is no current primary');
      return false;
    }
    if (this.busy(primary)) {
      this.deps.log.warn({ database: primary }, `scheduled backup of ${primary} skipped: another backup or restore of it is under way`);
      return false;
    }
    try {
      await this.create({ database: primary, name: 'scheduled', trigger: 'scheduled' });
      return true;
    } catch {
      return false; // logged and counted by create
    }
  }

  private emit(outcome: BackupOutcome): void {
    for (const listener of this.listeners) listener(outcome);
  }
}
