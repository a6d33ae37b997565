import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * Where a database's WAL archive lives under `backup_dir` (and, as keys, in
 * every storage): `<db>/archive/wal/` the finished segments (gzipped) and
 * timeline history files, `<db>/archive/times/` one record per segment of the
 * commit times in it, `<db>/archive/events/` holes the archiver knows of (a
 * slot it had to recreate). `<db>/archive/.spool/` is pg_receivewal's own
 * folder: hidden, local, never mirrored; the segment being written stays there.
 */
export const ARCHIVE_FOLDER = 'archive';

export const archiveKeys = {
  wal: (db: string) => `${db}/${ARCHIVE_FOLDER}/wal/`,
  times: (db: string) => `${db}/${ARCHIVE_FOLDER}/times/`,
  events: (db: string) => `${db}/${ARCHIVE_FOLDER}/events/`,
};

export interface ArchivePaths {
  root: string;
  spool: string;
  wal: string;
  times: string;
  events: string;
}

export function archivePaths(backupDir: string, database: string): ArchivePaths {
  const root = path.join(backupDir, database, ARCHIVE_FOLDER);
  return { root, spool: path.join(root, '.spool'), wal: path.join(root, 'wal'), times: path.join(root, 'times'), events: path.join(root, 'events') };
}

/** A finished segment as pg_receivewal names it in its folder: `<segment>.gz` (or bare, uncompressed). */
export function finishedSegmentOf(fileName: string): string | undefined {
  const match = /^([0-9A-F]{24})(\.gz)?$/.exec(fileName);
  return match?.[1];
}

/** The slot the sidecar streams a database's WAL through: `dr_sidecar_<db>` in the characters a slot name allows. */
export function slotNameFor(database: string): string {
  const safe = database.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  // Names of other scripts (and case) turn into underscores: a short hash keeps two of them apart.
  const tag = safe === database ? '' : `_${createHash('sha256').update(database).digest('hex').slice(0, 8)}`;
  return `dr_sidecar_${safe.slice(0, 63 - 11 - tag.length)}${tag}`;
}
