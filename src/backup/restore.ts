import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseConfig } from '../config/load.js';
import { ConflictError, DrError, InputError } from '../errors.js';
import { fileDigest, fsError, readBackupContent } from './backup-file.js';
import type { BackupRecord, Backups } from './backups.js';
import type { TableCounts } from './engine-backup.js';
import { engineBackupOfFormat } from './engines.js';
import { FOREIGN_FORMATS, identifyForeignBackup, inspectRestored, restoreForeign, type ForeignBackup } from './foreign-backup.js';
import type { Manifest } from './manifest.js';
import { isInside } from './naming.js';

export interface RestoreRequest {
  file: string;
  /** Default: the current primary. */
  database?: string;
  /** A backup file outside `backup_dir` is refused unless this is set. */
  allowOutsideBackupDir?: boolean;
  /** A backup made elsewhere, without a manifest: no checksum, no row counts to compare (see foreign-backup.ts). */
  noManifest?: boolean;
}

/** A restore that passed every check that reads no more than the manifest: what a confirmation shows. */
export type RestorePlan = { file: string; target: DatabaseConfig } & (
  | { manifest: Manifest; foreign: null }
  /** `--no-manifest`: what the file's first bytes say it is. */
  | { manifest: null; foreign: ForeignBackup }
);

export interface RestoreOptions {
  /** For a database that can no longer be read: restore without saving what it holds first. */
  skipSafetyBackup?: boolean;
}

export interface RestoreOutcome {
  file: string;
  database: string;
  /** The backup of what the restore overwrote; null when there was nothing to save (or it was skipped). */
  safety_backup: BackupRecord | null;
  duration_seconds: number;
  /** Read back after restoring a backup without a manifest (its rows were never recorded); null otherwise. */
  restored: { tables: TableCounts; detail: string } | null;
}

/** Checks a restore request without touching the database: file, place, manifest, engine. */
export function planRestore(backups: Backups, request: RestoreRequest): RestorePlan {
  const file = path.resolve(request.file);
  if (!fs.existsSync(file)) throw new InputError(`no such backup file: ${file}`);
  const backupDir = backups.deps.config.backup.backup_dir;
  if (!request.allowOutsideBackupDir && !isInside(realpath(backupDir), realpath(file))) {
    throw new InputError(`${file} is outside backup_dir (${backupDir}); pass --allow-outside-backup-dir to restore it anyway`);
  }
  const entry = backups.catalogue.entryAt(file);
  if (request.noManifest) return planForeignRestore(backups, request, file, entry.manifest !== undefined);
  if (!entry.manifest) {
    throw new ConflictError(
      `refusing to restore ${file}: ${entry.problem}; its checksum cannot be checked. ` +
        'A backup made elsewhere (pg_dump, a copied SQLite file) is restored with --no-manifest',
    );
  }
  if (entry.problem) throw new ConflictError(`refusing to restore ${file}: ${entry.problem}`);
  const target = backups.database(request.database);
  if (entry.manifest.engine !== target.target.engine) {
    throw new ConflictError(`refusing to restore ${file}: it is a ${entry.manifest.engine} backup, and ${target.name} is a ${target.target.engine} database`);
  }
  return { file, manifest: entry.manifest, foreign: null, target };
}

function planForeignRestore(backups: Backups, request: RestoreRequest, file: string, hasManifest: boolean): RestorePlan {
  if (hasManifest) throw new InputError(`${file} has a manifest beside it: restore it without --no-manifest, so that its checksum is checked`);
  const foreign = identifyForeignBackup(file);
  const target = backups.database(request.database);
  if (foreign.engine !== target.target.engine) {
    throw new ConflictError(`refusing to restore ${file}: it is a ${FOREIGN_FORMATS[foreign.format].shown}, and ${target.name} is a ${target.target.engine} database`);
  }
  return { file, manifest: null, foreign, target };
}

/**
 * Checks the checksum, saves what the target holds, then restores, all under
 * the target's lock. Nothing touches the target before the checksum matched
 * and the safety backup exists; the engine restores all or nothing.
 */
export async function executeRestore(backups: Backups, plan: RestorePlan, options: RestoreOptions = {}): Promise<RestoreOutcome> {
  const started = performance.now();
  const { target } = plan;
  const log = backups.deps.log;
  return backups.exclusive(target.name, async () => {
    // A restore killed before this one left a database-sized file beside the live one.
    backups.cleanLeftovers(target.name);
    // One open file for the check and the restore: what was checked is what is restored.
    const handle = await fs.promises.open(plan.file, 'r').catch((error: unknown) => {
      throw fsError(error, `opening ${plan.file}`);
    });
    try {
      if (plan.manifest) await checkDigest(handle, plan.file, plan.manifest);
      const safetyBackup = await safetyBackupOf(backups, target, options);
      const saved = safetyBackup ? ` (its contents before were saved to ${safetyBackup.path})` : '';
      log.info({ database: target.name, file: plan.file, manifest: plan.manifest !== null }, `backup restore of ${target.name} from ${plan.file} started`);
      const restoring = backups.deps.restoring;
      await restoring?.begin(target);
      let done = false;
      try {
        await restoreContent(plan, handle);
        done = true;
      } catch (error) {
        const message = backups.deps.scrub(`restoring ${plan.file} over ${target.name} failed: ${(error as Error).message}`);
        log.error({ database: target.name, file: plan.file }, `backup ${message}`);
        throw new DrError(`${message}${saved}`);
      } finally {
        await restoring?.end(target, done);
      }
      const restored = plan.foreign ? await inspectRestored(target).catch((error: unknown) => {
        throw new DrError(backups.deps.scrub(`${plan.file} was restored over ${target.name}, but its check afterwards failed: ${(error as Error).message}${saved}`));
      }) : null;
      const durationSeconds = (performance.now() - started) / 1000;
      log.info(
        { database: target.name, file: plan.file, safety_backup: safetyBackup?.path ?? null, duration_seconds: durationSeconds },
        `backup ${plan.file} restored over ${target.name}`,
      );
      return { file: plan.file, database: target.name, safety_backup: safetyBackup, duration_seconds: durationSeconds, restored };
    } finally {
      await handle.close();
    }
  });
}

function restoreContent(plan: RestorePlan, handle: fs.promises.FileHandle): Promise<void> {
  if (plan.manifest) return engineBackupOfFormat(plan.manifest.format).restore(plan.target, readBackupContent(handle, plan.manifest.compression === 'gzip'));
  return restoreForeign(plan.target, plan.foreign, readBackupContent(handle, plan.foreign.compressed));
}

async function checkDigest(handle: fs.promises.FileHandle, file: string, manifest: Manifest): Promise<void> {
  const digest = await fileDigest(handle).catch((error: unknown) => {
    throw fsError(error, `reading ${file}`);
  });
  if (digest.sha256 !== manifest.sha256 || digest.sizeBytes !== manifest.size_bytes) {
    throw new ConflictError(
      `refusing to restore ${file}: checksum mismatch (sha256 ${digest.sha256}, ${digest.sizeBytes} bytes; ` +
        `its manifest says ${manifest.sha256}, ${manifest.size_bytes} bytes); the database was not touched`,
    );
  }
}

async function safetyBackupOf(backups: Backups, target: DatabaseConfig, options: RestoreOptions): Promise<BackupRecord | null> {
  if (options.skipSafetyBackup) {
    backups.deps.log.warn({ database: target.name }, `backup before restore of ${target.name} skipped (--skip-safety-backup)`);
    return null;
  }
  if (target.target.engine === 'sqlite' && !fs.existsSync(target.target.file)) return null;
  try {
    return await backups.createUnlocked(target, 'pre-restore', 'pre-restore');
  } catch (error) {
    throw new DrError(
      `cannot save the current contents of ${target.name} before restoring, so nothing was restored: ${(error as Error).message}. ` +
        'If the database can no longer be read, copy its files aside yourself and pass --skip-safety-backup',
    );
  }
}

function realpath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}
