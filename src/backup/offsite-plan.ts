/**
 * Which local files go to a destination, in which order, and which count as
 * offsite: plain functions of listings and the destination's index.
 */
import path from 'node:path';
import type { Arrival } from './offsite-index.js';
import { MANIFEST_SUFFIX } from './naming.js';

export interface LocalFile {
  key: string;
  size: number;
  mtimeMs: number;
}

export interface RemoteObject {
  key: string;
  size: number;
}

export const isManifestKey = (key: string) => key.endsWith(MANIFEST_SUFFIX);
export const dataKeyOf = (manifestKey: string) => manifestKey.slice(0, -MANIFEST_SUFFIX.length);

/**
 * The files to mirror, oldest first. A manifest goes right after its backup
 * file (so a manifest on a destination means its file is there), and not at
 * all while its file is not published yet (a backup being written).
 */
export function uploadOrder(files: readonly LocalFile[]): LocalFile[] {
  const byKey = new Map(files.map((f) => [f.key, f]));
  const ordered: Array<{ file: LocalFile; at: number; rank: number }> = [];
  for (const file of files) {
    if (!isManifestKey(file.key)) {
      ordered.push({ file, at: file.mtimeMs, rank: 0 });
      continue;
    }
    const data = byKey.get(dataKeyOf(file.key));
    if (data) ordered.push({ file, at: Math.max(file.mtimeMs, data.mtimeMs), rank: 1 });
  }
  return ordered
    .sort((a, b) => a.at - b.at || a.rank - b.rank || (a.file.key < b.file.key ? -1 : a.file.key > b.file.key ? 1 : 0))
    .map((o) => o.file);
}

/** The local file is on the destination as the index remembers it (same size and time as when it was verified there). */
export function arrived(file: LocalFile, arrival: Arrival | undefined): boolean {
  return arrival !== undefined && arrival.size === file.size && arrival.mtime_ms === file.mtimeMs;
}

/** What still has to go to the destination, oldest first. */
export function pendingFiles(files: readonly LocalFile[], arrivals: Readonly<Record<string, Arrival>>): LocalFile[] {
  return uploadOrder(files).filter((f) => !arrived(f, arrivals[f.key]));
}

/**
 * Keys the index calls offsite that the destination no longer holds as they
 * were (deleted or changed behind the sidecar's back): they are offsite no
 * more, and will be copied again.
 */
export function vanished(arrivals: Readonly<Record<string, Arrival>>, remote: ReadonlyMap<string, RemoteObject>): string[] {
  return Object.entries(arrivals)
    .filter(([key, a]) => remote.get(key)?.size !== a.size)
    .map(([key]) => key);
}

/** A key's database: its first path segment (`primary/backup_….db.gz` → `primary`). */
export const databaseOfKey = (key: string) => key.split('/')[0]!;

/** Backups on a destination, for its retention: every manifest outside an archive folder, with its data file's presence. */
export function remoteBackups(remote: ReadonlyMap<string, RemoteObject>, database: string): Array<{ manifestKey: string; dataKey: string; present: boolean }> {
  return [...remote.keys()]
    .filter((key) => databaseOfKey(key) === database && isManifestKey(key) && key.split('/').length === 2)
    .map((manifestKey) => ({ manifestKey, dataKey: dataKeyOf(manifestKey), present: remote.has(dataKeyOf(manifestKey)) }));
}

/**
 * The storage key a user's FILE argument names: a path under `backup_dir`
 * (`backups/primary/x.db.gz`, absolute or relative), a destination's name plus
 * key (`s3://bucket/prefix/primary/x.db.gz`), or the key itself (`primary/x.db.gz`).
 */
export function keyOfBackupFile(file: string, backupDir: string, destinations: readonly string[]): string | undefined {
  for (const name of destinations) if (file.startsWith(`${name}/`)) return plainKey(file.slice(name.length + 1));
  const relative = path.relative(path.resolve(backupDir), path.resolve(file));
  if (relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative)) return plainKey(relative.split(path.sep).join('/'));
  return path.isAbsolute(file) ? undefined : plainKey(file);
}

/** `<database>/<file>`, nothing else (no `..`, no hidden part). */
function plainKey(key: string): string | undefined {
  const parts = key.split('/');
  return parts.length === 2 && parts.every((p) => p !== '' && !p.startsWith('.')) ? key : undefined;
}
