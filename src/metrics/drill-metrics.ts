import { Counter, Gauge, type Registry } from 'prom-client';
import { DRILL_KINDS, DRILL_RESULTS, type DrillKind, type DrillReport, type DrillResult } from '../drill/drill-record.js';

/** What the drill metrics read: the outcomes of this process's drills, and the drills in the shared history. */
export interface DrillMetricsSource {
  onOutcome(listener: (outcome: { kind: DrillKind; result: DrillResult }) => void): unknown;
  /** Drill reports in the history with when each finished (epoch ms), newest first. */
  recentDrills(): Promise<Array<{ finishedAt: number; report: DrillReport }>>;
}

const HISTORY_CACHE_MS = 5000;

/**
 * `dr_drills_total{kind,result}` counts the drills this process ran (the
 * leader's); the gauges read the shared history at scrape time, so every
 * sidecar shows the last drill whichever one ran it.
 */
export function registerDrillMetrics(registry: Registry, source: DrillMetricsSource): void {
  const total = new Counter({
    name: 'dr_drills_total',
    help: 'Drills run by this sidecar, by kind (switchover, restore) and result (success, failed, skipped).',
    labelNames: ['kind', 'result'],
    registers: [registry],
  });
  for (const kind of DRILL_KINDS) for (const result of DRILL_RESULTS) total.inc({ kind, result }, 0);
  let cached: { at: number; drills: Awaited<ReturnType<DrillMetricsSource['recentDrills']>> } | undefined;
  source.onOutcome(({ kind, result }) => {
    total.inc({ kind, result });
    cached = undefined;
  });
  const drills = async () => {
    if (!cached || Date.now() - cached.at > HISTORY_CACHE_MS) cached = { at: Date.now(), drills: await source.recentDrills().catch(() => cached?.drills ?? []) };
    return cached.drills;
  };

  new Gauge({
    name: 'dr_drill_last_success_timestamp_seconds',
    help: 'Unix time the last successful drill of each kind finished (from the shared history).',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const kind of DRILL_KINDS) {
        const last = (await drills()).find((d) => d.report.kind === kind && d.report.result === 'success');
        if (last) this.set({ kind }, last.finishedAt / 1000);
      }
    },
  });
  new Gauge({
    name: 'dr_drill_write_outage_seconds',
    help: 'Write outage the probe writer saw in the last switchover drill that measured it: the switch there and the switch back (direction).',
    labelNames: ['kind', 'direction'],
    registers: [registry],
    async collect() {
      this.reset();
      const last = (await drills()).find((d) => d.report.switchover && d.report.switchover.outageThereSeconds !== null);
      const s = last?.report.switchover;
      if (!s) return;
      if (s.outageThereSeconds !== null) this.set({ kind: 'switchover', direction: 'there' }, s.outageThereSeconds);
      if (s.outageBackSeconds !== null) this.set({ kind: 'switchover', direction: 'back' }, s.outageBackSeconds);
    },
  });
  new Gauge({
    name: 'dr_drill_switch_back_failed',
    help: '1 when the last switchover drill switched away but could not switch back: the cluster runs on another primary than the one it had; else 0.',
    registers: [registry],
    async collect() {
      const last = (await drills()).find((d) => d.report.switchover)?.report.switchover;
      this.set(last && last.target !== null && last.endedOn !== last.original ? 1 : 0);
    },
  });
}
