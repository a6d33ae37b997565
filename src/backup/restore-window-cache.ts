import type { Logger } from '../log.js';
import type { RestoreWindow } from './point-in-time.js';

/** A restore window as `status --json`, `/api/status` and the status page carry it. */
export interface RestoreWindowStatus {
  database: string;
  engine: RestoreWindow['engine'];
  ranges: Array<{ from: string; to: string }>;
  gaps: Array<{ from: string; to: string; reason: string }>;
  /** When the window was computed (it is recomputed in the background, not on each request). */
  computed_at: string;
}

/** Windows older than this are recomputed at the next read: an archive grows by a segment every `segment_interval`. */
export const RESTORE_WINDOW_MAX_AGE_MS = 30_000;

/** Recompute now? Not while a computation is under way, nor before `maxAgeMs` since the last attempt (good or bad). */
export function windowsDue(lastAttemptMs: number | undefined, nowMs: number, maxAgeMs: number, inFlight: boolean): boolean {
  return !inFlight && (lastAttemptMs === undefined || nowMs - lastAttemptMs >= maxAgeMs);
}

export function restoreWindowStatus(window: RestoreWindow, computedAt: Date): RestoreWindowStatus {
  return {
    database: window.database,
    engine: window.engine,
    ranges: window.ranges.map((r) => ({ from: r.from.toISOString(), to: r.to.toISOString() })),
    gaps: window.gaps.map((g) => ({ from: g.from.toISOString(), to: g.to.toISOString(), reason: g.reason })),
    computed_at: computedAt.toISOString(),
  };
}

/**
 * The restore windows for status answers. Computing one lists the archive and
 * reads a time record per segment, too much for every `/api/status` request or
 * page refresh: a read answers from the last computation at once and, when
 * that is older than `maxAgeMs`, starts one in the background (one at a time).
 */
export class RestoreWindowCache {
  private last: RestoreWindowStatus[] = [];
  private lastAttemptMs: number | undefined;
  private inFlight: Promise<RestoreWindowStatus[]> | undefined;

  constructor(
    private readonly compute: () => Promise<RestoreWindow[]>,
    private readonly log: Logger,
    private readonly maxAgeMs = RESTORE_WINDOW_MAX_AGE_MS,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The last computed windows (empty before the first), refreshed in the background when due. */
  current(): RestoreWindowStatus[] {
    if (windowsDue(this.lastAttemptMs, this.now().getTime(), this.maxAgeMs, this.inFlight !== undefined)) void this.refresh().catch(() => undefined);
    return this.last;
  }

  /** Computes the windows now (or joins the computation under way). */
  refresh(): Promise<RestoreWindowStatus[]> {
    this.inFlight ??= this.run().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Waits for a computation under way (the service stopping). */
  async settle(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
  }

  private async run(): Promise<RestoreWindowStatus[]> {
    this.lastAttemptMs = this.now().getTime();
    try {
      const windows = await this.compute();
      const at = this.now();
      this.last = windows.map((w) => restoreWindowStatus(w, at));
      return this.last;
    } catch (error) {
      this.log.warn({}, `the restore windows could not be computed (status keeps the last ones): ${(error as Error).message}`);
      throw error;
    }
  }
}
