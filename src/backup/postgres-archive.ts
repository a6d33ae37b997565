import { text } from 'node:stream/consumers';
import type { Storage } from '../storage/storage.js';
import { archiveKeys } from '../engines/postgres/archive-layout.js';
import { isHistoryFile, parseLsn, parseSegmentName, segnoOf } from '../engines/postgres/wal-segments.js';
import { archiveView, type ArchivedSegment, type ArchiveEvent, type ArchiveView, type BaseBackupRef } from './archive-window.js';
import { MANIFEST_SUFFIX } from './naming.js';
import { parseManifest } from './manifest.js';

/** One database's archive as a storage holds it: base backups, segments with their commit times, history files, recorded holes. */
export interface PostgresArchive {
  storage: Storage;
  database: string;
  backups: BaseBackupRef[];
  segments: ArchivedSegment[];
  /** Keys of the segment files and history files, by file name. */
  files: Map<string, string>;
  events: ArchiveEvent[];
}

export async function readPostgresArchive(storage: Storage, database: string): Promise<PostgresArchive> {
  const [walObjects, timeObjects, eventObjects, topObjects] = await Promise.all([
    storage.list(archiveKeys.wal(database)),
    storage.list(archiveKeys.times(database)),
    storage.list(archiveKeys.events(database)),
    storage.list(`${database}/`),
  ]);
  const times = new Map<string, { first_commit: string | null; last_commit: string | null }>();
  for (const o of timeObjects) {
    const segment = o.key.slice(o.key.lastIndexOf('/') + 1).replace(/\.json$/, '');
    const record = await readJson<{ first_commit: string | null; last_commit: string | null }>(storage, o.key);
    if (record) times.set(segment, record);
  }
  const files = new Map<string, string>();
  const segments: ArchivedSegment[] = [];
  for (const o of walObjects) {
    const file = o.key.slice(o.key.lastIndexOf('/') + 1);
    const bare = file.replace(/\.gz$/, '');
    if (isHistoryFile(bare)) files.set(bare, o.key);
    const parsed = parseSegmentName(bare);
    if (!parsed) continue;
    files.set(bare, o.key);
    const t = times.get(bare);
    segments.push({
      name: bare,
      segno: parsed.segno,
      timeline: parsed.timeline,
      firstCommit: t?.first_commit ? new Date(t.first_commit) : undefined,
      lastCommit: t?.last_commit ? new Date(t.last_commit) : undefined,
    });
  }
  const events: ArchiveEvent[] = [];
  for (const o of eventObjects) {
    const e = await readJson<{ at: string; reason: string }>(storage, o.key);
    if (e) events.push({ at: new Date(e.at), reason: e.reason });
  }
  const backups: BaseBackupRef[] = [];
  for (const o of topObjects.filter((t) => t.key.endsWith(MANIFEST_SUFFIX) && t.key.split('/').length === 2)) {
    const body = await storage.read(o.key).then(text).catch(() => undefined);
    const manifest = body === undefined ? undefined : parseManifest(body);
    if (!manifest || typeof manifest === 'string' || manifest.format !== 'postgresql-base' || !manifest.wal) continue;
    if (manifest.verification?.ok === false) continue;
    const key = `${database}/${manifest.file}`;
    if (!topObjects.some((t) => t.key === key && t.size === manifest.size_bytes)) continue;
    backups.push({
      key,
      consistentAt: new Date(manifest.finished_at),
      startSegno: segnoOf(parseLsn(manifest.wal.start_lsn)),
      endSegno: segnoOf(parseLsn(manifest.wal.end_lsn)),
      selfContained: true,
    });
  }
  return { storage, database, backups, segments, files, events };
}

export function viewOf(archive: PostgresArchive): ArchiveView {
  return archiveView(archive.segments, archive.backups, archive.events);
}

async function readJson<T>(storage: Storage, key: string): Promise<T | undefined> {
  try {
    return JSON.parse(await text(await storage.read(key))) as T;
  } catch {
    return undefined;
  }
}
