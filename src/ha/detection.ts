/** What the HA loop sees after a probe of the current primary. */
export interface DetectionInput {
  primary: string | undefined;
  consecutiveFailures: number;
  threshold: number;
  autoFailoverEnabled: boolean;
  /** A failover (by this process) is under way. */
  inProgress: boolean;
  now: number;
  lastAutoFailoverAt: number | undefined;
  cooldownSeconds: number;
  /** When this process last tried and found no candidate, or failed. */
  lastAttemptAt: number | undefined;
  retryDelaySeconds: number;
}

/** Why a dead primary is not replaced now; stays the same while the situation does (the `why` text changes with the counts). */
export type HoldReason = 'disabled' | 'in_progress' | 'cooldown' | 'retry_delay';

export type Detection =
  | { action: 'none' }
  | { action: 'failover' }
  | { action: 'hold'; because: HoldReason; why: string };

/**
 * Whether to fail over now. Only after `threshold` failed probes in a row
 * (a slow answer is not a failure); never twice within the cooldown; and
 * after an attempt that found no candidate, again only after `retry_delay`.
 */
export function detectFailure(input: DetectionInput): Detection {
  if (!input.primary || input.consecutiveFailures < input.threshold) return { action: 'none' };
  const dead = `primary ${input.primary} failed ${input.consecutiveFailures} probes in a row`;
  if (!input.autoFailoverEnabled) return { action: 'hold', because: 'disabled', why: `${dead}, but automatic failover is disabled` };
  if (input.inProgress) return { action: 'hold', because: 'in_progress', why: `${dead}; a failover is already under way` };
  if (cooldownLeft(input) > 0) {
    const since = (input.now - input.lastAutoFailoverAt!) / 1000;
    return { action: 'hold', because: 'cooldown', why: `${dead}, but the last automatic failover was ${since.toFixed(0)} s ago (cooldown ${input.cooldownSeconds} s)` };
  }
  if (input.lastAttemptAt !== undefined && (input.now - input.lastAttemptAt) / 1000 < input.retryDelaySeconds) {
    return { action: 'hold', because: 'retry_delay', why: `${dead}; retrying after retry_delay` };
  }
  return { action: 'failover' };
}

/**
 * Seconds of the failover cooldown still to run (0: none applies). The one
 * cooldown of the cluster: after an automatic failover, by the monitor or by
 * an alert, neither the monitor nor an alert fails over again before it ends.
 */
export function cooldownLeft(c: { lastAutoFailoverAt: number | undefined; cooldownSeconds: number; now: number }): number {
  if (c.lastAutoFailoverAt === undefined || c.cooldownSeconds <= 0) return 0;
  return Math.max(0, c.cooldownSeconds - (c.now - c.lastAutoFailoverAt) / 1000);
}
