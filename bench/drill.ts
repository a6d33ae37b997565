/**
 * Switchover drills, both engines, on real databases with the sidecar running
 * in this process and an application writing numbered rows through withSession:
 * the write outage the drill's own probe writer measured each way (targets:
 * SQLite < 100 ms, PostgreSQL < 1 s), and the rows the application lost (0).
 *
 * PostgreSQL: a primary whose synchronous standbys are standby1 and one more
 * server the sidecar does not manage (ANY 1), so the primary commits again when
 * the drill brings it back (nothing re-attaches the demoted standby1 yet).
 */
import { performance } from 'node:perf_hooks';
import type { DrillReport } from '../src/drill/drill-record.js';
import type { DisasterRecoveryService } from '../src/service.js';
import { clusterDatabases, memoryLogger as pgMemoryLogger, missingIds, NumberedWriter, startInProcessSidecar, startPgCluster, writeFailoverConfig } from '../test/support/failover.js';
import { imageIds, lostIds, sqliteCluster, startSidecar, Writer } from '../test/support/sqlite-cluster.js';
import { withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';

const SQLITE_TARGET_MS = 100;
const PG_TARGET_MS = 1000;
const ROWS_BEFORE = 100;

/** One switchover drill as the sidecar (the leader) carries it out; its report. */
async function drill(service: DisasterRecoveryService): Promise<DrillReport> {
  const [record] = await service.drill({ kinds: ['switchover'], requestedBy: 'manual' });
  const report = record?.drill;
  if (!report || report.result !== 'success' || !report.switchover) throw new Error(`the drill did not succeed: ${report?.detail ?? 'no report'}`);
  return report;
}

async function outages(report: Report, engine: string, d: DrillReport, targetMs: number, service: DisasterRecoveryService): Promise<void> {
  const s = d.switchover!;
  // The drill's two switches, for what the outage was spent on.
  const switches = (await service.history(10)).filter((r) => r.id !== undefined && s.switchIds.includes(r.id));
  for (const r of switches.reverse()) report.note(`${engine} drill switch ${r.from} -> ${r.to}: phases ${JSON.stringify(r.phases)} ms; ${r.dataSync?.method}: ${r.dataSync?.detail}`);
  report.check(`${engine} drill: write outage ${s.original} -> ${s.target}`, (s.outageThereSeconds ?? NaN) * 1000, 'ms', '<', targetMs, 0);
  report.check(`${engine} drill: write outage ${s.target} -> ${s.original} (back)`, (s.outageBackSeconds ?? NaN) * 1000, 'ms', '<', targetMs, 0);
}

async function sqlite(ctx: BenchContext, report: Report): Promise<void> {
  const cluster = sqliteCluster({ after: (fn) => void ctx.cleanup.add('SQLite drill sandbox', fn) }, { rows: 2_000, failover: { sync_interval: 0.5 }, monitoring: { probe_timeout: 5 } });
  const config = cluster.load();
  const sidecar = await startSidecar(config);
  const stopSidecar = ctx.cleanup.add('SQLite drill sidecar', () => sidecar.stop());
  const writer = await Writer.open(config, 100_000, 3);
  const stopWriter = ctx.cleanup.add('SQLite drill writer', () => writer.stop());
  writer.start();
  try {
    await writer.waitForAcks('primary', ROWS_BEFORE);
    const d = await drill(sidecar.service);
    await writer.waitForAcks('primary', ROWS_BEFORE);
    await stopWriter();
    await outages(report, 'SQLite', d, SQLITE_TARGET_MS, sidecar.service);
    report.check('SQLite drill: acknowledged rows lost', lostIds(writer.ids(), imageIds(cluster.file('primary'))).length, 'rows', '=', 0, 0);
  } finally {
    await stopWriter();
    await stopSidecar();
  }
}

async function postgres(ctx: BenchContext, report: Report): Promise<void> {
  const pg = await startPgCluster({ standbys: 2 });
  ctx.cleanup.add('PostgreSQL drill cluster', () => pg.destroy());
  await pg.primary.query("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (standby1, standby2)'");
  await pg.primary.query('SELECT pg_reload_conf()');
  const { config } = writeFailoverConfig({ dir: ctx.tmp, fileName: 'drill.yaml', state: `{ path: "${ctx.tmp}/drill-state.db" }`, databases: clusterDatabases(pg).slice(0, 2), healthCheckInterval: 0.5, probeTimeout: 2 });
  const log = pgMemoryLogger('warn');
  const running = await startInProcessSidecar(config, log.log);
  const stop = ctx.cleanup.add('PostgreSQL drill sidecar', () => running.stop());
  const writer = new NumberedWriter(running.manager, { paceMs: 3 }).start();
  const stopWriter = ctx.cleanup.add('PostgreSQL drill writer', () => writer.stop());
  try {
    await writer.waitForAcks(ROWS_BEFORE, 20_000, 'primary');
    const d = await drill(running.sidecar);
    await writer.waitForAcks(ROWS_BEFORE, 20_000, 'primary');
    await stopWriter();
    await outages(report, 'PostgreSQL', d, PG_TARGET_MS, running.sidecar);
    report.check('PostgreSQL drill: acknowledged rows lost', (await missingIds(pg.primary, writer.ids())).length, 'rows', '=', 0, 0);
  } catch (error) {
    report.note(`PostgreSQL drill sidecar log tail:\n${log.text().split('\n').slice(-15).join('\n')}`);
    throw error;
  } finally {
    await stopWriter();
    await stop();
  }
}

export const drillSection: Section = {
  title: 'switchover drill (write outage each way, seen through withSession)',
  budgetMs: 100_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const started = performance.now();
    try {
      await withTimeout(sqlite(ctx, report), 40_000, 'SQLite drill');
    } catch (error) {
      report.error('SQLite: could not measure', (error as Error).message);
    }
    await withTimeout(postgres(ctx, report), 55_000, 'PostgreSQL drill');
    report.info('section wall time', (performance.now() - started) / 1000, 's', 1);
  },
};
