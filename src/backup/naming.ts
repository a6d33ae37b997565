import path from 'node:path';
import { InputError } from '../errors.js';
import { nameProblem } from '../names.js';

/** What a backup of each engine holds, and the extension its file gets. */
export const BACKUP_FORMATS = {
  /** A page-for-page copy of the SQLite database file (opens with `sqlite3`). */
  'sqlite-database': { engine: 'sqlite', extension: 'db' },
  /** `pg_dump --format=custom --compress=0`: an archive that `pg_restore` reads (from stdin too). */
  'postgresql-custom': { engine: 'postgresql', extension: 'dump' },
  /** `pg_basebackup -Ft -X fetch`: a whole cluster's data directory as a tar, with the WAL it needs; with the archive, the start of a point-in-time restore. */
  'postgresql-base': { engine: 'postgresql', extension: 'tar' },
} as const;

export type BackupFormat = keyof typeof BACKUP_FORMATS;

export const MANIFEST_SUFFIX = '.manifest.json';
/**
 * A name from `--name` or the API becomes part of a file name: it may not
 * leave its folder nor hide (no separators, no `..`, no leading dot or dash).
 * Letters of any script are fine: the guide's users name backups in Chinese.
 */
export function validateBackupName(name: string): string {
  const problem = nameProblem(name) ?? (/^[.-]/.test(name) ? 'may not start with "." or "-"' : name.includes('..') ? 'may not hold ".."' : undefined);
  if (problem) throw new InputError(`invalid backup name ${JSON.stringify(name)}: it ${problem}`);
  return name;
}

/** `20231201T143000Z`: UTC, sortable, no characters that trouble a shell or a file system. */
export function utcStamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** `<name>_<UTC stamp>[-N].<ext>[.gz]`; `attempt` > 1 tells apart two backups of the same second. */
export function backupFileName(name: string, at: Date, format: BackupFormat, compressed: boolean, attempt = 1): string {
  const suffix = attempt > 1 ? `-${attempt}` : '';
  return `${name}_${utcStamp(at)}${suffix}.${BACKUP_FORMATS[format].extension}${compressed ? '.gz' : ''}`;
}

export const manifestPathOf = (backupFile: string): string => `${backupFile}${MANIFEST_SUFFIX}`;

/** Where a database's backups live: `backup_dir/<database>/`. */
export function databaseDir(backupDir: string, database: string): string {
  // The config allows "." and "-" in names, so "." and ".." would pass it and leave backup_dir.
  if (database === '.' || database === '..' || database.includes('/') || database.includes('\\')) {
    throw new InputError(`database name "${database}" cannot name a backup folder`);
  }
  return path.join(backupDir, database);
}

// The temporary names of engines/durable-file.ts (`.<file>.tmp-<pid>-<ms>`), and the
// journal files SQLite may leave beside a scratch copy.
const TEMPORARY = /^\..+\.tmp-(\d+)-(\d+)(?:-journal|-wal|-shm)?$/;

/** The process that made a temporary file and when, or undefined when `file` is not one. */
export function temporaryOwner(file: string): { pid: number; createdMs: number } | undefined {
  const match = TEMPORARY.exec(path.basename(file));
  return match ? { pid: Number(match[1]), createdMs: Number(match[2]) } : undefined;
}

/** True when `child` is `parent` or inside it, after resolving both. */
export function isInside(parent: string, child: string): boolean {
  const relative = path.relative(path.resolve(parent), path.resolve(child));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
