/**
 * `restore --to-time`, `restore --list-times` and the archive part of `verify`
 * and `status`: one entry per command, dispatched by engine to the engine's
 * archive (SQLite: engines/sqlite/archive-restore.ts). What is read goes
 * through the Storage interface, from the first place that has it: the local
 * backup_dir, then each offsite destination in config order (BackupSources).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseConfig } from '../config/load.js';
import { commitFile, temporaryNameFor } from '../engines/durable-file.js';
import { ensurePrivateFolder } from '../engines/private-file.js';
import { rebuildAt, removeDatabase, sqliteRestoreWindow, verifySqliteArchive, type SqliteRebuild } from '../engines/sqlite/archive-restore.js';
import { DrError, InputError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { Backups } from './backups.js';
import { identifyForeignBackup } from './foreign-backup.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './point-in-time.js';

export class PointInTimeRestores {
  constructor(private readonly backups: Backups) {}

  /** Local first, then each offsite destination. */
  private get storages(): Storage[] {
    return this.backups.sources.all;
  }

  /** The window of each database (the one named, else every enabled one whose engine archives), from the first place holding an archive of it. */
  async windows(database?: string): Promise<RestoreWindow[]> {
    const databases = database === undefined ? this.backups.databases() : [this.backups.database(database)];
    const windows: RestoreWindow[] = [];
    for (const db of databases) {
      if (db.target.engine === 'sqlite') windows.push((await this.sqliteArchiveOf(db.name))?.window ?? { database: db.name, engine: 'sqlite', ranges: [], gaps: [] });
    }
    return windows;
  }

  /** The first storage (local first) that holds an archive of `database`, with its window. */
  private async sqliteArchiveOf(database: string): Promise<{ storage: Storage; window: RestoreWindow } | undefined> {
    for (const storage of this.storages) {
      const window = await sqliteRestoreWindow(storage, database).catch(() => undefined); // a destination that cannot be read: the next
      if (window && (window.ranges.length > 0 || window.gaps.length > 0)) return { storage, window };
    }
    return undefined;
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
      const archive = await this.sqliteArchiveOf(db.name);
      if (!archive) continue; // never archived
      const scratch = temporaryNameFor(path.join(this.scratchDir(db), 'verify-archive.db'));
      results.push(await verifySqliteArchive(archive.storage, db.name, scratch));
    }
    return results;
  }

  private async restoreSqlite(db: DatabaseConfig, request: PointInTimeRequest, confirm: (db: DatabaseConfig) => Promise<void>): Promise<PointInTimeOutcome> {
    const started = performance.now();
    const into = request.into === undefined ? undefined : path.resolve(request.into);
    if (into !== undefined && fs.existsSync(into)) throw new InputError(`--into ${into}: the file exists; name a new file (the restore never overwrites one)`);
    const temporary = temporaryNameFor(into ?? path.join(this.scratchDir(db), 'point-in-time.db'));
    try {
      const { rebuilt, storage } = await this.rebuildFromFirst(db, request.time, temporary);
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
        source: storage.name,
        lastTransactionAt: rebuilt.lastTransactionAt,
        into,
        safetyBackup,
        durationSeconds: (performance.now() - started) / 1000,
      };
    } finally {
      removeDatabase(temporary);
    }
  }

  /**
   * The state at `time` from the first storage whose archive holds it whole:
   * a time outside the local window, or a damaged local archive, is looked
   * for on the destinations. Refused naming each place's reason.
   */
  private async rebuildFromFirst(db: DatabaseConfig, time: Date, file: string): Promise<{ rebuilt: SqliteRebuild; storage: Storage }> {
    const reasons: string[] = [];
    let onlyInput = true;
    for (const storage of this.storages) {
      try {
        return { rebuilt: await rebuildAt(storage, db.name, time, file), storage };
      } catch (error) {
        // A destination that cannot be read, or an archive there that is damaged: the next one may have it whole.
        onlyInput &&= error instanceof InputError;
        reasons.push(this.storages.length > 1 ? `${storage.name}: ${(error as Error).message}` : (error as Error).message);
      }
    }
    const message = reasons.join('; ');
    throw onlyInput ? new InputError(message) : new DrError(message);
  }

  /** A hidden place in the database's backup folder: never catalogued nor mirrored, removed by leftovers cleaning if killed. */
  private scratchDir(db: DatabaseConfig): string {
    const dir = this.backups.catalogue.dirOf(db.name);
    ensurePrivateFolder(dir);
    return dir;
  }
}
