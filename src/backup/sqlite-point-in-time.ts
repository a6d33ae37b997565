/**
 * Point-in-time restore of SQLite databases (the engine's part of
 * point-in-time-restores.ts): the archive (engines/sqlite/archive-restore.ts)
 * read from the first place that has it, local first, then each offsite
 * destination; the result written into a new file (`--into`) or over the
 * configured database through today's restore (safety backup first).
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

export class SqlitePointInTime {
  constructor(
    private readonly backups: Backups,
    /** Local first, then each offsite destination. */
    private readonly storages: readonly Storage[],
  ) {}

  /** The window of the first place holding an archive of `database`. */
  async window(database: string): Promise<RestoreWindow> {
    return (await this.archiveOf(database))?.window ?? { database, engine: 'sqlite', ranges: [], gaps: [] };
  }

  async restore(request: PointInTimeRequest, options: { skipSafetyBackup?: boolean } = {}): Promise<PointInTimeOutcome> {
    const started = performance.now();
    const db = this.backups.database(request.database);
    const into = request.into === undefined ? undefined : path.resolve(request.into);
    if (into !== undefined && fs.existsSync(into)) throw new InputError(`--into ${into}: the file exists; name a new file (the restore never overwrites one)`);
    const temporary = temporaryNameFor(into ?? path.join(this.scratchDir(db), 'point-in-time.db'));
    try {
      const { rebuilt, storage } = await this.rebuildFromFirst(db, request.time, temporary);
      let safetyBackup: string | undefined;
      if (into !== undefined) commitFile(temporary, into);
      else {
        const outcome = await this.backups.restore({ file: temporary, manifest: null, foreign: identifyForeignBackup(temporary), target: db }, options);
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

  /** The archive proven by a restore into scratch; undefined when `database` was never archived. */
  async verify(database: string, at?: Date): Promise<ArchiveVerification | undefined> {
    const archive = await this.archiveOf(database);
    if (!archive) return undefined;
    const scratch = temporaryNameFor(path.join(this.scratchDir(this.backups.database(database)), 'verify-archive.db'));
    return verifySqliteArchive(archive.storage, database, scratch, at);
  }

  /** The first storage (local first) that holds an archive of `database`, with its window. */
  private async archiveOf(database: string): Promise<{ storage: Storage; window: RestoreWindow } | undefined> {
    for (const storage of this.storages) {
      const window = await sqliteRestoreWindow(storage, database).catch(() => undefined); // a destination that cannot be read: the next
      if (window && (window.ranges.length > 0 || window.gaps.length > 0)) return { storage, window };
    }
    return undefined;
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
