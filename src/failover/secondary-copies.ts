import type { Engines } from '../engines/index.js';
import { CopyCancelled } from '../engines/sqlite-copy.js';
import type { Logger } from '../log.js';

export interface CopyPlan {
  /** The primary to copy from, when it is up. */
  primary: string | undefined;
  /** Databases not to overwrite: the primary, demoted former primaries, disabled ones. */
  exclude: readonly string[];
  /** False while a failover is under way. */
  allowed: boolean;
  /** The epoch the plan was made in: a copy's age is a lag only while the primary it came from is still the primary. */
  epoch: number;
  /**
   * Asked under each secondary's write lock right before its file is replaced:
   * a reason when the plan no longer holds (a switch was recorded since, or a
   * failover is under way, maybe in another process), else undefined.
   */
  stillValid(): Promise<string | undefined>;
}

/**
 * Keeps SQLite secondaries warm: every `sync_interval` seconds a consistent
 * online copy of the primary replaces each secondary's file. The time of the
 * last copy is the secondary's replication lag. A demoted former primary is
 * never overwritten: it may hold the writes of the lost window. A lag is the
 * age of the last copy made in the current epoch (from the current primary):
 * a database nobody copies to now (the primary, a demoted one) has none, so
 * its lag series is absent instead of growing forever.
 */
export class SecondaryCopies {
  private readonly copiedAt = new Map<string, { at: number; epoch: number }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly engines: Engines,
    private readonly intervalSeconds: number,
    private readonly plan: () => Promise<CopyPlan>,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = async () => {
      this.running = this.copyOnce();
      await this.running;
      this.timer = setTimeout(tick, this.intervalSeconds * 1000);
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** When the last copy into `name` started, whichever primary it came from (what a failover's target holds). */
  lastCopyAt(name: string): number | undefined {
    return this.copiedAt.get(name)?.at;
  }

  /** Age of the last copy into `name` from the primary of `epoch`; undefined when none was made in that epoch. */
  lagSeconds(name: string, epoch: number, now: number = Date.now()): number | undefined {
    const copy = this.copiedAt.get(name);
    return copy === undefined || copy.epoch !== epoch ? undefined : (now - copy.at) / 1000;
  }

  /** One round of copies; a failing secondary is logged and tried again next round. */
  async copyOnce(): Promise<void> {
    let plan: CopyPlan;
    try {
      plan = await this.plan();
    } catch (error) {
      this.log.error({ err: error }, 'disaster-recovery sync: no copy this round, the state is unreadable');
      return;
    }
    const primary = plan.primary ? this.engines.get(plan.primary) : undefined;
    if (!plan.allowed || !primary || !primary.copiesPeriodically) return;
    for (const target of this.engines.all()) {
      if (target.kind !== primary.kind || target === primary || plan.exclude.includes(target.name)) continue;
      const startedAt = Date.now();
      try {
        // A switch recorded (by any process) after the plan was made calls the copy off: the target may be the primary now.
        await target.catchUp(primary, undefined, 60_000, () => plan.stillValid());
        this.copiedAt.set(target.name, { at: startedAt, epoch: plan.epoch });
        this.log.debug({ from: primary.name, to: target.name }, `disaster-recovery sync: copied ${primary.name} to ${target.name}`);
      } catch (error) {
        if (error instanceof CopyCancelled) {
          this.log.info({ from: primary.name, to: target.name }, `disaster-recovery sync: ${error.message}`);
          return;
        }
        this.log.error({ from: primary.name, to: target.name, err: error }, `disaster-recovery sync: copy of ${primary.name} to ${target.name} failed`);
      }
    }
  }
}
