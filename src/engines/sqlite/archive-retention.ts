/**
 * Which generations of a SQLite archive retention removes: a plain function.
 * A generation goes whole or not at all (its segments need its snapshot and
 * each other), so no kept snapshot ever loses a segment it needs.
 */
import type { ArchivedGeneration } from './archive-window.js';

const DAY_MS = 86_400_000;

export interface ArchiveRetention {
  keep: string[];
  remove: string[];
}

/**
 * Keeps what restoring any moment of the last `retentionDays` needs, nothing
 * older: a generation is kept while the moments it restores reach into the
 * window, which for one continued by the next (a periodic snapshot) is up to
 * that next one's start. The newest is always kept: it is being written,
 * and an idle database's last commit may be older than the window.
 */
export function planArchiveRetention(generations: readonly ArchivedGeneration[], now: Date, retentionDays: number): ArchiveRetention {
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const sorted = [...generations].sort((a, b) => a.startedMs - b.startedMs || (a.name < b.name ? -1 : 1));
  const keep: string[] = [];
  const remove: string[] = [];
  sorted.forEach((generation, i) => {
    const next = sorted[i + 1];
    const lastSegmentMs = generation.segments.at(-1)?.committedMs ?? generation.startedMs;
    const continued = next?.record?.continues === generation.name;
    const reachesMs = continued ? next.startedMs : lastSegmentMs;
    if (next === undefined || reachesMs >= cutoff) keep.push(generation.name);
    else remove.push(generation.name);
  });
  return { keep, remove };
}
