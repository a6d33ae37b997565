/**
 * SQLite periodic copy of a large primary: the longest stall of the sidecar's
 * event loop while sync_interval copies of a 40 MB primary are made (a file
 * past 8 MB is copied in a worker thread, so probes, the HA loop and /metrics
 * go on). The sidecar runs in this process, nothing else does. Target: < 200 ms.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { padDatabase, sleep, sqliteCluster, startSidecar } from '../test/support/sqlite-cluster.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';

const PRIMARY_MB = 40;
const COPIES = 3;
const STALL_TARGET_MS = 200;

export const periodicCopySection: Section = {
  title: `SQLite periodic copy (${PRIMARY_MB} MB primary, sync_interval 1 s)`,
  budgetMs: 60_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const cluster = sqliteCluster({ after: (fn) => void ctx.cleanup.add('SQLite periodic copy sandbox', fn) }, { failover: { sync_interval: 1 } });
    padDatabase(cluster.file('primary'), PRIMARY_MB);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const sidecar = await startSidecar(cluster.load());
    const stopSidecar = ctx.cleanup.add('SQLite periodic copy sidecar', () => sidecar.stop());
    try {
      delay.enable();
      const started = performance.now();
      const copies: number[] = [];
      while (copies.length < COPIES) {
        const at = sidecar.service.copies.lastCopyAt('secondary1');
        if (at !== undefined && at !== copies.at(-1)) copies.push(at);
        await sleep(20);
      }
      delay.disable();
      report.check(`event-loop stall during ${COPIES} copies: max`, delay.max / 1e6, 'ms', '<', STALL_TARGET_MS, 0);
      report.info('event-loop delay during the copies: p99', delay.percentile(99) / 1e6, 'ms', 0);
      report.info(`wall time of the ${COPIES} copies`, (performance.now() - started) / 1000, 's', 1);
    } finally {
      delay.disable();
      await stopSidecar();
    }
  },
};
