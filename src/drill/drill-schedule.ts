/**
 * `drill.schedule`: a cron expression, run by node-schedule on the leader only
 * (started and stopped with the leadership).
 */
import schedule from 'node-schedule';
import type { Logger } from '../log.js';

export class DrillSchedule {
  private job: schedule.Job | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly expression: string | undefined,
    /** One scheduled drill; never rejects. */
    private readonly run: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (!this.expression || this.job) return;
    this.job = schedule.scheduleJob(this.expression, () => void this.fire()) ?? undefined;
    if (this.job) this.log.info({ schedule: this.expression }, `disaster-recovery drill: scheduled (${this.expression}), next at ${this.job.nextInvocation()?.toISOString()}`);
  }

  /** No more runs; waits for one under way (stopped half-way, a drill would leave the cluster on its secondary). */
  async stop(): Promise<void> {
    this.job?.cancel();
    this.job = undefined;
    await this.running;
  }

  private fire(): void {
    // A drill that outlasts its interval is not started twice.
    if (this.running) return;
    this.running = this.run().finally(() => (this.running = undefined));
  }
}
