/**
 * What retention keeps of a PostgreSQL archive: a plain function. Every
 * moment of the last `retention_days` must stay restorable, so the newest
 * base backup at or before the cutoff (the one a restore to the cutoff
 * starts from) stays, with every newer one and every segment from its start
 * on; older base backups and segments go. Nothing is removed while no base
 * backup reaches back to the cutoff's start segment.
 */
export interface RetainedBase {
  id: string;
  consistentAt: Date;
  startSegno: bigint;
}

export interface RetainedSegment {
  id: string;
  segno: bigint;
}

export interface ArchiveRetentionPlan {
  keepBackups: RetainedBase[];
  removeBackups: RetainedBase[];
  keepSegments: RetainedSegment[];
  removeSegments: RetainedSegment[];
}

const DAY_MS = 86_400_000;

export function planArchiveRetention(backups: readonly RetainedBase[], segments: readonly RetainedSegment[], retentionDays: number, now: Date): ArchiveRetentionPlan {
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const oldestFirst = [...backups].sort((a, b) => a.consistentAt.getTime() - b.consistentAt.getTime());
  // The restore of the cutoff's moment starts from the newest backup at or before it; with none that old, the oldest there is.
  const atOrBefore = oldestFirst.filter((b) => b.consistentAt.getTime() <= cutoff);
  const anchor = atOrBefore.at(-1) ?? oldestFirst[0];
  if (!anchor) return { keepBackups: [], removeBackups: [], keepSegments: [...segments], removeSegments: [] };
  const keepBackups = oldestFirst.filter((b) => b.consistentAt >= anchor.consistentAt);
  const removeBackups = oldestFirst.filter((b) => b.consistentAt < anchor.consistentAt);
  // A kept backup may start before the anchor's start (a long backup): the earliest start of any kept one bounds the segments.
  const firstNeeded = keepBackups.reduce((min, b) => (b.startSegno < min ? b.startSegno : min), anchor.startSegno);
  return {
    keepBackups,
    removeBackups,
    keepSegments: segments.filter((s) => s.segno >= firstNeeded),
    removeSegments: segments.filter((s) => s.segno < firstNeeded),
  };
}
