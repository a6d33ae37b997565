import type { Storage } from '../storage/storage.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Backups } from './backups.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './point-in-time.js';
import { PostgresPointInTime } from './postgres-point-in-time.js';
import { SqlitePointInTime } from './sqlite-point-in-time.js';

/** `restore --to-time`, `--list-times` and the archive part of `verify`, dispatched by the database's engine. */
export class PointInTimeRestores {
  private readonly postgres: PostgresPointInTime;
  private readonly sqlite: SqlitePointInTime;

  constructor(
    private readonly backups: Backups,
    /** Offsite destinations to read an archive from when the local folder does not cover the time. */
    offsite: Storage[] = [],
  ) {
    const storages = [new LocalStorage(backups.deps.config.backup.backup_dir), ...offsite];
    this.postgres = new PostgresPointInTime(backups, storages);
    this.sqlite = new SqlitePointInTime(backups, storages);
  }

  async windows(database?: string): Promise<RestoreWindow[]> {
    const dbs = database === undefined ? this.backups.databases() : [this.backups.database(database)];
    const windows: RestoreWindow[] = [];
    for (const db of dbs) {
      windows.push(db.target.engine === 'postgresql' ? await this.postgres.window(db.name) : await this.sqlite.window(db.name));
    }
    return windows;
  }

  restore(request: Omit<PointInTimeRequest, 'database'> & { database?: string }, options: { skipSafetyBackup?: boolean } = {}): Promise<PointInTimeOutcome> {
    const db = this.backups.database(request.database || undefined);
    if (db.target.engine === 'sqlite') return this.sqlite.restore({ ...request, database: db.name }, options);
    return this.postgres.restore({ ...request, database: db.name }, options);
  }

  /** One database's archive proven by a restore to `time` into a scratch place (the restore drill's random moment). */
  async verifyAt(database: string, time: Date): Promise<ArchiveVerification> {
    const db = this.backups.database(database);
    if (db.target.engine === 'postgresql') return this.postgres.verify(db.name, time);
    return (await this.sqlite.verify(db.name, time)) ?? { database: db.name, ok: false, detail: `${db.name} has no archive yet`, gaps: [] };
  }

  /** Every archived database's archive proven (a restore to a moment inside its window), with its gaps. */
  async verify(): Promise<ArchiveVerification[]> {
    if (!this.backups.deps.config.backup.archive.enabled) return [];
    const results: ArchiveVerification[] = [];
    for (const db of this.backups.databases().filter((d) => d.target.engine === 'postgresql')) {
      const window = await this.postgres.window(db.name);
      if (window.ranges.length === 0 && window.gaps.length === 0 && db.name !== this.backups.deps.currentPrimary()) continue;
      results.push(await this.postgres.verify(db.name).catch((error: unknown) => ({ database: db.name, ok: false, detail: (error as Error).message, gaps: window.gaps })));
    }
    for (const db of this.backups.databases().filter((d) => d.target.engine === 'sqlite')) {
      const proven = await this.sqlite.verify(db.name);
      if (proven) results.push(proven);
    }
    return results;
  }
}
