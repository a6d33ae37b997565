import { InputError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Backups } from './backups.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './point-in-time.js';
import { PostgresPointInTime } from './postgres-point-in-time.js';

/** `restore --to-time`, `--list-times` and the archive part of `verify`, dispatched by the database's engine. */
export class PointInTimeRestores {
  private readonly postgres: PostgresPointInTime;

  constructor(
    private readonly backups: Backups,
    /** Offsite destinations to read an archive from when the local folder does not cover the time. */
    offsite: Storage[] = [],
  ) {
    this.postgres = new PostgresPointInTime(backups, [new LocalStorage(backups.deps.config.backup.backup_dir), ...offsite]);
  }

  async windows(database?: string): Promise<RestoreWindow[]> {
    const dbs = database === undefined ? this.backups.databases() : [this.backups.database(database)];
    const windows: RestoreWindow[] = [];
    for (const db of dbs) {
      windows.push(db.target.engine === 'postgresql' ? await this.postgres.window(db.name) : { database: db.name, engine: 'sqlite', ranges: [], gaps: [] });
    }
    return windows;
  }

  restore(request: Omit<PointInTimeRequest, 'database'> & { database?: string }, options: { skipSafetyBackup?: boolean } = {}): Promise<PointInTimeOutcome> {
    const db = this.backups.database(request.database || undefined);
    if (db.target.engine !== 'postgresql') throw new InputError(`restore --to-time of ${db.name}: point-in-time restore of SQLite is not available in this build`);
    return this.postgres.restore({ ...request, database: db.name }, options);
  }

  /** One database's archive proven by a restore to `time` into a scratch folder (the restore drill's random moment). */
  async verifyAt(database: string, time: Date): Promise<ArchiveVerification> {
    const db = this.backups.database(database);
    if (db.target.engine !== 'postgresql') return { database: db.name, ok: false, detail: 'point-in-time restore of SQLite is not available in this build', gaps: [] };
    return this.postgres.verify(db.name, time);
  }

  /** Every archived PostgreSQL database's archive proven; SQLite's answer none here. */
  async verify(): Promise<ArchiveVerification[]> {
    if (!this.backups.deps.config.backup.archive.enabled) return [];
    const results: ArchiveVerification[] = [];
    for (const db of this.backups.databases().filter((d) => d.target.engine === 'postgresql')) {
      const window = await this.postgres.window(db.name);
      if (window.ranges.length === 0 && window.gaps.length === 0 && db.name !== this.backups.deps.currentPrimary()) continue;
      results.push(await this.postgres.verify(db.name).catch((error: unknown) => ({ database: db.name, ok: false, detail: (error as Error).message, gaps: window.gaps })));
    }
    return results;
  }
}
