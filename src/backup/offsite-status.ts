import type { LocalStorage } from '../storage/local-storage.js';
import type { OffsiteIndexData } from './offsite-index.js';
import { databaseOfKey, pendingFiles, type LocalFile } from './offsite-plan.js';

/** One destination as status, the API and metrics show it: named without any secret. */
export interface OffsiteStatus {
  destination: string;
  /** Local files verified on the destination (by the index; each pass re-checks it against the destination's listing). */
  offsite_files: number;
  pending_files: number;
  /** The oldest few pending keys (what goes next). */
  pending: string[];
  last_arrived: { key: string; at: string } | null;
  last_success_at: string | null;
  /** The last failed pass (credentials never in it); null once a pass succeeds. */
  last_error: { message: string; at: string } | null;
}

const PENDING_SHOWN = 5;

export function localFilesOf(local: LocalStorage): LocalFile[] {
  return local.listSync().map((o) => ({ key: o.key, size: o.size, mtimeMs: o.modified.getTime() }));
}

export function offsiteStatus(files: readonly LocalFile[], index: OffsiteIndexData): OffsiteStatus {
  const pending = pendingFiles(files, index.objects);
  const local = new Set(files.map((f) => f.key));
  return {
    destination: index.destination,
    offsite_files: Object.keys(index.objects).filter((k) => local.has(k)).length,
    pending_files: pending.length,
    pending: pending.slice(0, PENDING_SHOWN).map((f) => f.key),
    last_arrived: index.last_arrived,
    last_success_at: index.last_success_at,
    last_error: index.last_error,
  };
}

/** Per database, when the newest file of it was verified on the destination (epoch ms). */
export function lastArrivalByDatabase(index: OffsiteIndexData): Map<string, number> {
  const newest = new Map<string, number>();
  for (const [key, arrival] of Object.entries(index.objects)) {
    const database = databaseOfKey(key);
    const at = Date.parse(arrival.at);
    if (at > (newest.get(database) ?? 0)) newest.set(database, at);
  }
  return newest;
}
