/** Which backups retention removes: a plain function of dates, counts and limits. */

export interface RetainedBackup {
  id: string;
  createdAt: Date;
  /** False when the backup is known to be unusable (file missing, truncated, failed verification). */
  good: boolean;
}

export interface RetentionPolicy {
  /** `max_backups`: at most this many backups per database. */
  maxBackups: number;
  /** `retention_days`: nothing older than this. */
  retentionDays: number;
}

export interface RetentionPlan {
  /** Newest first. */
  keep: RetainedBackup[];
  remove: RetainedBackup[];
}

const DAY_MS = 86_400_000;

/**
 * Both limits at once: a backup stays only if it is among the `maxBackups`
 * newest and not older than `retentionDays`. One exception: the newest good
 * backup always stays, so a database never loses its last way back (a
 * sidecar that could not back up for longer than `retention_days` keeps it).
 */
export function planRetention(backups: readonly RetainedBackup[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const newestFirst = [...backups].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id.localeCompare(a.id));
  const newestGood = newestFirst.find((b) => b.good);
  const oldestAllowed = now.getTime() - policy.retentionDays * DAY_MS;
  const plan: RetentionPlan = { keep: [], remove: [] };
  newestFirst.forEach((backup, rank) => {
    const withinLimits = rank < policy.maxBackups && backup.createdAt.getTime() >= oldestAllowed;
    (withinLimits || backup === newestGood ? plan.keep : plan.remove).push(backup);
  });
  return plan;
}
