import schedule from 'node-schedule';
import type { Logger } from '../log.js';

/** After a failed scheduled backup, try again this soon (or after one interval, if shorter). */
export const RETRY_AFTER_MS = 5 * 60_000;

/**
 * When the next scheduled backup is due: one interval after the newest good
 * backup of the primary, or now when that is overdue or there is none. A
 * restarted sidecar neither waits a full interval nor backs up twice.
 */
export function nextBackupAt(lastSuccessMs: number | undefined, intervalSeconds: number, nowMs: number): number {
  if (lastSuccessMs === undefined) return nowMs;
  return Math.max(nowMs, Math.min(lastSuccessMs, nowMs) + intervalSeconds * 1000);
}

/** When to try again after a scheduled backup failed. */
export function retryAt(nowMs: number, intervalSeconds: number): number {
  return nowMs + Math.min(RETRY_AFTER_MS, intervalSeconds * 1000);
}

export interface ScheduleOptions {
  intervalSeconds: number;
  /** Epoch ms of the snapshot of the primary's newest good backup. */
  lastSuccessMs: () => number | undefined;
  /** Takes one backup; true when it succeeded. Never rejects. */
  run: () => Promise<boolean>;
  log: Logger;
}

/**
 * `backup_interval` through node-schedule: one dated job at a time, each
 * planned from the catalogue when the previous one ends, so intervals of any
 * number of seconds work (a cron rule cannot say "every 5400 s") and a slow
 * backup never overlaps the next.
 */
export class BackupSchedule {
  private job: schedule.Job | undefined;
  private running = false;

  constructor(private readonly options: ScheduleOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const first = nextBackupAt(this.options.lastSuccessMs(), this.options.intervalSeconds, Date.now());
    this.options.log.info(
      { backup_interval: this.options.intervalSeconds, next_backup_at: new Date(first).toISOString() },
      `backup schedule started: every ${this.options.intervalSeconds} s, next at ${new Date(first).toISOString()}`,
    );
    this.plan(first);
  }

  stop(): void {
    this.running = false;
    this.job?.cancel();
    this.job = undefined;
  }

  private plan(atMs: number): void {
    if (!this.running) return;
    const at = new Date(Math.max(atMs, Date.now() + 100));
    const job = schedule.scheduleJob(at, () => void this.fire());
    // node-schedule drops (returns null for) a date that passed while it set the job up.
    if (!job) return this.plan(Date.now() + 1000);
    this.job = job;
    this.options.log.debug({ next_backup_at: at.toISOString() }, `next scheduled backup at ${at.toISOString()}`);
  }

  private async fire(): Promise<void> {
    this.job = undefined;
    const ok = await this.options.run();
    const now = Date.now();
    this.plan(ok ? nextBackupAt(this.options.lastSuccessMs(), this.options.intervalSeconds, now) : retryAt(now, this.options.intervalSeconds));
  }
}
