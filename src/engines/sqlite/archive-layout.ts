/**
 * Where a SQLite database's archive lives, as storage keys (the same on every
 * destination), and what a key says by its name alone, so that the restore
 * window is computed from one listing without reading any segment:
 *
 *   <db>/archive/<generation>/snapshot.db.gz           the database at the generation's start
 *   <db>/archive/<generation>/generation.json          written last: the generation exists
 *   <db>/archive/<generation>/<sequence>-<ms>.seg[.gz] one read of the WAL: its committed
 *                                                      transactions, seen committed at <ms>
 *
 * A generation's name starts with its start time, so names sort by time.
 */
export const ARCHIVE_FOLDER = 'archive';
export const SNAPSHOT_NAME = 'snapshot.db.gz';
export const GENERATION_NAME = 'generation.json';
const SEGMENT_PATTERN = /^(\d{8})-(\d{13})\.seg(\.gz)?$/;
const GENERATION_PATTERN = /^\d{8}T\d{9}Z-[0-9a-f]{4}$/;

export function archivePrefix(database: string): string {
  return `${database}/${ARCHIVE_FOLDER}/`;
}

/** A new generation's name: its start time (UTC, to the millisecond) and a few random hex digits. */
export function generationName(startedMs: number, random: string): string {
  const iso = new Date(startedMs).toISOString(); // 2026-11-30T07:25:12.123Z
  return `${iso.slice(0, 10).replaceAll('-', '')}T${iso.slice(11, 23).replace(/[:.]/g, '')}Z-${random.slice(0, 4)}`;
}

export function segmentName(sequence: number, committedMs: number, compressed: boolean): string {
  return `${String(sequence).padStart(8, '0')}-${String(committedMs).padStart(13, '0')}.seg${compressed ? '.gz' : ''}`;
}

export function generationKey(database: string, generation: string, name: string): string {
  return `${archivePrefix(database)}${generation}/${name}`;
}

export type ArchiveKey =
  | { kind: 'snapshot'; generation: string }
  | { kind: 'generation'; generation: string }
  | { kind: 'segment'; generation: string; sequence: number; committedMs: number; compressed: boolean }
  | { kind: 'other' };

/** What the key of an object under `<db>/archive/` is. */
export function parseArchiveKey(database: string, key: string): ArchiveKey {
  const prefix = archivePrefix(database);
  if (!key.startsWith(prefix)) return { kind: 'other' };
  const parts = key.slice(prefix.length).split('/');
  if (parts.length !== 2 || !GENERATION_PATTERN.test(parts[0]!)) return { kind: 'other' };
  const [generation, name] = parts as [string, string];
  if (name === SNAPSHOT_NAME) return { kind: 'snapshot', generation };
  if (name === GENERATION_NAME) return { kind: 'generation', generation };
  const segment = SEGMENT_PATTERN.exec(name);
  if (!segment) return { kind: 'other' };
  return { kind: 'segment', generation, sequence: Number(segment[1]), committedMs: Number(segment[2]), compressed: segment[3] !== undefined };
}

/** generation.json: what the generation starts from and why it was started. */
export interface GenerationRecord {
  format: 'dr-sidecar sqlite archive generation';
  version: 1;
  database: string;
  generation: string;
  /** The snapshot is the database as the archive saw it at this moment. */
  started_at: string;
  reason: string;
  /** The generation this one continues without a gap (a periodic snapshot), or null (continuity was lost, or a start). */
  continues: string | null;
  page_size: number;
  snapshot: { key: string; size_bytes: number; sha256: string; pages: number };
}
