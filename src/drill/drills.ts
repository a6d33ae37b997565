/**
 * Drills: the guide's 定期测试 (test failover and restore regularly) as a
 * feature. Each drill is admitted (or skipped, with why), run under the
 * cluster's leadership, written to the history as an entry of trigger `drill`
 * carrying its figures, counted, and a failure is told (log, notification).
 */
import type { Config } from '../config/load.js';
import type { TableCounts } from '../backup/engine-backup.js';
import type { VerifyResult } from '../backup/verify.js';
import { InputError } from '../errors.js';
import type { FailoverRequest } from '../failover/procedure.js';
import type { Logger } from '../log.js';
import type { Notifier } from '../notifications/notifier.js';
import type { Leadership } from '../state/leadership.js';
import type { FailoverRecord, FailoverResult, StateStore } from '../state/store.js';
import { admitDrill } from './admission.js';
import { DRILL_KINDS, drillReportJson, drillSummary, type DrillKind, type DrillReport, type DrillResult } from './drill-record.js';
import { DrillSchedule } from './drill-schedule.js';
import { runRestoreDrill, type PointInTimeDrill } from './restore-drill.js';
import { runSwitchoverDrill } from './switchover-drill.js';
import type { SessionRunner } from './write-probe.js';

export interface DrillRequest {
  /** Which drills, in this order (default: switchover, then restore). */
  kinds?: DrillKind[];
  /** The database whose newest backup the restore drill restores (default: the current primary). */
  database?: string | undefined;
  requestedBy?: 'manual' | 'scheduled';
}

export interface DrillsDeps {
  config: Config;
  log: Logger;
  store: StateStore;
  notifier: Notifier;
  /** The recorded primary, read afresh. */
  currentPrimary(): Promise<string | undefined>;
  autoFailoverEnabled(): boolean;
  failoverUnderWay(): boolean;
  /** Databases with a backup or restore under way in this process. */
  backupsUnderWay(): string[];
  /** Probes every database now, and gives the secondaries of `primary`'s engine with their lag. */
  secondaries(primary: string): Promise<Array<{ name: string; up: boolean; lagSeconds: number | undefined }>>;
  runFailover(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord>;
  countRows(database: string): Promise<TableCounts>;
  writable(database: string): Promise<boolean>;
  openWriter(): Promise<{ withSession: SessionRunner; close(): Promise<void> }>;
  newestGood(database: string): { path: string; created_at: string } | undefined;
  verify(file: string): Promise<VerifyResult[]>;
  pointInTime?: PointInTimeDrill;
  /** The running sidecar's own leadership, for the schedule. */
  leadership(): Leadership | undefined;
}

const RESULT_IN_HISTORY: Record<DrillResult, FailoverResult> = { success: 'success', failed: 'failed', skipped: 'refused' };

export class Drills {
  private underWay = false;
  private readonly listeners = new Set<(outcome: { kind: DrillKind; result: DrillResult }) => void>();
  private readonly schedule: DrillSchedule;

  constructor(private readonly deps: DrillsDeps) {
    this.schedule = new DrillSchedule(deps.config.drill.schedule, () => this.scheduled(), deps.log);
  }

  get running(): boolean {
    return this.underWay;
  }

  onOutcome(listener: (outcome: { kind: DrillKind; result: DrillResult }) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  startSchedule(): void {
    this.schedule.start();
  }

  /** Stops the schedule, after the scheduled drill under way (if any) has finished. */
  stop(): Promise<void> {
    return this.schedule.stop();
  }

  /** Drill reports in the history, newest first (for the metrics). */
  async recentDrills(limit = 200): Promise<Array<{ finishedAt: number; report: DrillReport }>> {
    const records = await this.deps.store.history(limit);
    return records.filter((r) => r.drill).map((r) => ({ finishedAt: Date.parse(r.finishedAt), report: r.drill! }));
  }

  /** Runs the drills asked for, one after the other, under `leadership`; each lands in the history. */
  async run(request: DrillRequest, leadership: Leadership): Promise<FailoverRecord[]> {
    const kinds = request.kinds ?? [...DRILL_KINDS];
    if (request.database !== undefined && !this.deps.config.topology.get(request.database)?.enabled) {
      throw new InputError(`unknown database "${request.database}"; enabled databases: ${this.deps.config.topology.enabled().map((d) => d.name).join(', ')}`);
    }
    const records: FailoverRecord[] = [];
    for (const kind of kinds) records.push(await this.runOne(kind, request, leadership));
    return records;
  }

  private async runOne(kind: DrillKind, request: DrillRequest, leadership: Leadership): Promise<FailoverRecord> {
    const startedAt = new Date();
    const requestedBy = request.requestedBy ?? 'manual';
    const primary = await this.deps.currentPrimary();
    const admission = admitDrill({
      kind,
      autoFailoverEnabled: this.deps.autoFailoverEnabled(),
      drillUnderWay: this.underWay,
      failoverUnderWay: this.deps.failoverUnderWay(),
      backupsUnderWay: this.deps.backupsUnderWay(),
      primary,
      secondaries: kind === 'switchover' && primary ? await this.deps.secondaries(primary) : [],
      maxLagSeconds: this.deps.config.failover.max_lag_on_failover,
    });
    const report = (result: DrillResult, detail: string, extra: Partial<DrillReport> = {}): DrillReport => ({
      kind,
      result,
      detail,
      requestedBy,
      durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 10) / 100,
      ...extra,
    });
    if (!admission.admit) return this.finish(startedAt, report('skipped', admission.why), primary ?? null, null);
    this.underWay = true;
    try {
      if (kind === 'switchover') {
        const outcome = await runSwitchoverDrill({
          log: this.deps.log,
          currentPrimary: this.deps.currentPrimary,
          switchover: (r) => this.deps.runFailover(r, leadership),
          countRows: this.deps.countRows,
          writable: this.deps.writable,
          openWriter: this.deps.openWriter,
          resumeTimeoutMs: this.resumeTimeoutMs(),
        });
        const done = report(outcome.ok ? 'success' : 'failed', outcome.detail, { switchover: outcome.figures });
        if (outcome.strandedOn !== undefined) this.stranded(done, outcome.figures.original, outcome.strandedOn);
        return await this.finish(startedAt, done, outcome.figures.original, outcome.figures.endedOn);
      }
      const database = request.database ?? primary;
      if (!database) return await this.finish(startedAt, report('failed', 'there is no current primary whose backup to restore: name one with --database'), null, null);
      const outcome = await runRestoreDrill(
        { newestGood: this.deps.newestGood, verify: this.deps.verify, ...(this.deps.pointInTime ? { pointInTime: this.deps.pointInTime } : {}) },
        database,
      );
      return await this.finish(startedAt, report(outcome.ok ? 'success' : 'failed', outcome.detail, { restore: outcome.figures }), database, null);
    } catch (error) {
      return await this.finish(startedAt, report('failed', (error as Error).message), primary ?? null, (await this.deps.currentPrimary().catch(() => undefined)) ?? null);
    } finally {
      this.underWay = false;
    }
  }

  /** Writes must resume on a new primary within the time the library waits for a failover, and some. */
  private resumeTimeoutMs(): number {
    const { failover, monitoring } = this.deps.config;
    return (Math.min(failover.health_check_interval, monitoring.check_interval) * failover.detection_threshold + monitoring.probe_timeout + 30) * 1000;
  }

  /** The loud part: the cluster did not come back to its original primary. */
  private stranded(report: DrillReport, original: string, on: string): void {
    this.deps.log.error(
      { original, primary: on },
      `disaster-recovery drill: THE SWITCH BACK FAILED; the cluster is on ${on}, not on its original primary ${original}: ${report.detail}`,
    );
  }

  private async finish(startedAt: Date, report: DrillReport, from: string | null, to: string | null): Promise<FailoverRecord> {
    const { store, log, notifier, config } = this.deps;
    const state = await store.read().catch(() => undefined);
    const record: FailoverRecord = {
      epoch: state?.epoch ?? null,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      from,
      to,
      trigger: 'drill',
      reason: `${report.kind} drill (${report.requestedBy})`,
      result: RESULT_IN_HISTORY[report.result],
      error: report.result === 'success' ? null : report.detail,
      dataSync: null,
      phases: {},
      drill: report,
    };
    const id = await store.appendHistory(record).catch((error: Error) => {
      log.error({ err: error }, 'disaster-recovery drill: the drill could not be written to the history');
      return undefined;
    });
    const summary = drillSummary(report);
    if (report.result === 'success') log.info({ kind: report.kind }, `disaster-recovery ${summary}`);
    else if (report.result === 'skipped') log.warn({ kind: report.kind }, `disaster-recovery ${summary}`);
    else log.error({ kind: report.kind }, `disaster-recovery ${summary}`);
    if (report.result === 'failed' && config.failover.notification_enabled) notifier.notify({ event: 'drill', summary, ...drillReportJson(report) });
    for (const listener of this.listeners) listener({ kind: report.kind, result: report.result });
    return { ...record, ...(id !== undefined ? { id } : {}) };
  }

  private async scheduled(): Promise<void> {
    const leadership = this.deps.leadership();
    if (!leadership) return;
    try {
      await this.run({ requestedBy: 'scheduled' }, leadership);
    } catch (error) {
      this.deps.log.error({ err: error }, `disaster-recovery drill: the scheduled drill failed: ${(error as Error).message}`);
    }
  }
}
