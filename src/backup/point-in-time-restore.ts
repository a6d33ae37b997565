/**
 * `restore --to-time`, `restore --list-times` and the archive part of `verify`
 * and `status`: one entry per command, dispatched by engine to the engine's
 * archive (SQLite: engines/sqlite/archive-restore.ts). What is read goes
 * through the Storage interface, so an offsite copy can stand in for backup_dir.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseConfig } from '../config/load.js';
import { commitFile, temporaryNameFor } from '../engines/durable-file.js';
import { ensurePrivateFolder } from '../engines/private-file.js';
import { rebuildAt, removeDatabase, sqliteRestoreWindow, verifySqliteArchive } from '../engines/sqlite/archive-restore.js';
import { InputError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { Backups } from './backups.js';
import { identifyForeignBackup } from './foreign-backup.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './point-in-time.js';

export class PointInTimeRestores {
  constructor(
    private readonly backups: Backups,
    /** Where the archive is read from (the local backup_dir first). */
    private readonly storage: Storage,
  ) {}

  /** The window of each database (the one named, else every enabled one whose engine archives). */
  async windows(database?: string): Promise<RestoreWindow[]> {
    const databases = database === undefined ? this.backups.databases() : [this.backups.database(database)];
    const windows: RestoreWindow[] = [];
    for (const db of databases) {
      if (db.target.engine === 'sqlite') windows.push(await sqliteRestoreWindow(this.storage, db.name));
    }
    return windows;
  }

  /**
   * The database as of `request.time`: into `request.into` (a new file), or
   * over the configured database through today's restore (safety backup first).
   * `confirm` is asked once the state is rebuilt and checked, before anything is replaced.
   */
  async restore(request: PointInTimeRequest, confirm: (db: DatabaseConfig) => Promise<void>): Promise<PointInTimeOutcome> {
    const db = this.backups.database(request.database || undefined);
    if (db.target.engine !== 'sqlite') throw new InputError(`restore --to-time of ${db.name}: point-in-time restore of ${db.target.engine} databases is not in this build`);
    return this.restoreSqlite(db, request, confirm);
  }

  /** Proves each archive by a restore into scratch, and lists its gaps. */
  async verify(): Promise<ArchiveVerification[]> {
    const results: ArchiveVerification[] = [];
    for (const db of this.backups.databases()) {
      if (db.target.engine !== 'sqlite') continue;
      const window = await sqliteRestoreWindow(this.storage, db.name);
      if (window.ranges.length === 0 && window.gaps.length === 0) continue; // never archived
      const scratch = temporaryNameFor(path.join(this.scratchDir(db), 'verify-archive.db'));
      results.push(await verifySqliteArchive(this.storage, db.name, scratch));
    }
    return results;
  }

  private async restoreSqlite(db: DatabaseConfig, request: PointInTimeRequest, confirm: (db: DatabaseConfig) => Promise<void>): Promise<PointInTimeOutcome> {
    const started = performance.now();
    const into = request.into === undefined ? undefined : path.resolve(request.into);
    if (into !== undefined && fs.existsSync(into)) throw new InputError(`--into ${into}: the file exists; name a new file (the restore never overwrites one)`);
    const temporary = temporaryNameFor(into ?? path.join(this.scratchDir(db), 'point-in-time.db'));
    try {
      const rebuilt = await rebuildAt(this.storage, db.name, request.time, temporary);
      let safetyBackup: string | undefined;
      if (into !== undefined) commitFile(temporary, into);
      else {
        await confirm(db);
        const outcome = await this.backups.restore({ file: temporary, manifest: null, foreign: identifyForeignBackup(temporary), target: db });
        safetyBackup = outcome.safety_backup?.path;
      }
      return {
        database: db.name,
        time: request.time,
        base: rebuilt.base,
        source: this.storage.name,
        lastTransactionAt: rebuilt.lastTransactionAt,
        into,
        safetyBackup,
        durationSeconds: (performance.now() - started) / 1000,
      };
    } finally {
      removeDatabase(temporary);
    }
  }

  /** A hidden place in the database's backup folder: never catalogued nor mirrored, removed by leftovers cleaning if killed. */
  private scratchDir(db: DatabaseConfig): string {
    const dir = this.backups.catalogue.dirOf(db.name);
    ensurePrivateFolder(dir);
    return dir;
  }
}
