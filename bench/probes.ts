/**
 * Probe cycle: one `monitor.probeAll()` over the 55 databases, against the
 * slowest single probe run alone. Target: cycle <= slowest single probe + 20 ms.
 */
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Engine } from '../src/engines/index.js';
import type { BenchContext, Section } from './context.js';
import { PG_DATABASES, SQLITE_FILES } from './fleet.js';
import { openService } from './service.js';
import { median, percentile } from './stats.js';
import type { Report } from './table.js';

const WARMUP_CYCLES = 3;
const CYCLES = 20;
const SINGLE_REPEATS = 5;
const BATCH_REPEATS = 10;
const OVERHEAD_TARGET_MS = 20;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function repeat(times: number, fn: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await timed(fn));
  return samples;
}

/** Wall times of `times` runs, and this process's CPU time (all threads, user + system) per run. */
async function repeatWithCpu(times: number, fn: () => Promise<unknown>): Promise<{ wallMs: number[]; cpuMs: number }> {
  const before = process.cpuUsage();
  const wallMs = await repeat(times, fn);
  const cpu = process.cpuUsage(before);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 / times };
}

/** Runs every probe of `engines` at once, like probeAll but without the monitor's bookkeeping. */
function batch(engines: Engine[], timeoutMs: number): () => Promise<unknown> {
  return () => Promise.all(engines.map((e) => e.probe(timeoutMs)));
}

export const probeCycleSection: Section = {
  title: `probe cycle (${SQLITE_FILES} SQLite + ${PG_DATABASES} PostgreSQL)`,
  budgetMs: 60_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const fleet = await ctx.fleet();
    const yaml = fleet.configYaml({ port: 0, statePath: path.join(ctx.tmp, 'probe-state.db'), checkIntervalSeconds: 30 });
    const { config, service, stop } = await openService(ctx, 'probe-cycle', yaml);
    try {
      const timeoutMs = config.monitoring.probe_timeout * 1000;
      const engines = service.engines.all();

      for (let i = 0; i < WARMUP_CYCLES; i++) await service.monitor.probeAll();
      const healths = await service.monitor.probeAll();
      const down = healths.filter((h) => h.status !== 'up');
      report.check('databases up after a cycle', healths.length - down.length, `of ${engines.length}`, '=', engines.length, 0);
      if (down.length > 0) report.note(`down: ${down.slice(0, 5).map((h) => `${h.name} (${h.last?.error})`).join('; ')}`);

      const { wallMs: cycles, cpuMs: cycleCpuMs } = await repeatWithCpu(CYCLES, () => service.monitor.probeAll());

      // Each engine alone, one after another: nothing else runs meanwhile.
      const singles = new Map<Engine, number>();
      for (const engine of engines) {
        await engine.probe(timeoutMs);
        singles.set(engine, median(await repeat(SINGLE_REPEATS, () => engine.probe(timeoutMs))));
      }
      const [slowest, slowestMs] = [...singles].reduce((a, b) => (b[1] > a[1] ? b : a));
      const perKind = (kind: Engine['kind']) => median(engines.filter((e) => e.kind === kind).map((e) => singles.get(e)!));

      // Where the cycle's time goes: each engine kind's probes at once, without the other kind.
      const sqliteBatch = await repeatWithCpu(BATCH_REPEATS, batch(engines.filter((e) => e.kind === 'sqlite'), timeoutMs));
      const pgBatch = await repeatWithCpu(BATCH_REPEATS, batch(engines.filter((e) => e.kind === 'postgresql'), timeoutMs));

      const cycleMedian = median(cycles);
      report.info(`cycle time, median of ${CYCLES}`, cycleMedian, 'ms');
      report.info(`cycle time, p95 of ${CYCLES}`, percentile(cycles, 95), 'ms');
      report.info(`slowest single probe alone (median of ${SINGLE_REPEATS}): ${slowest.name}`, slowestMs, 'ms');
      report.check('cycle overhead = cycle median - slowest single', cycleMedian - slowestMs, 'ms', '<=', OVERHEAD_TARGET_MS);
      report.info('sidecar CPU per cycle (this process, all threads; not PostgreSQL)', cycleCpuMs, 'ms');
      report.info('single SQLite probe alone, median over files', perKind('sqlite'), 'ms');
      report.info('single PostgreSQL probe alone, median over dbs', perKind('postgresql'), 'ms');
      report.info(`${SQLITE_FILES} SQLite probes at once (no PostgreSQL), median`, median(sqliteBatch.wallMs), 'ms');
      report.info(`  sidecar CPU per such batch`, sqliteBatch.cpuMs, 'ms');
      report.info(`${PG_DATABASES} PostgreSQL probes at once (no SQLite), median`, median(pgBatch.wallMs), 'ms');
      report.info(`  sidecar CPU per such batch`, pgBatch.cpuMs, 'ms');
      report.note(
        `probe cycle: ${PG_DATABASES} PostgreSQL databases live on ONE server (cheaper than ${PG_DATABASES} servers; ` +
          `their probes share its postmaster) on this same host, so its backends' CPU competes with the sidecar's on ${os.cpus().length} CPUs. ` +
          'Each PostgreSQL probe opens a fresh connection (a new backend); SQLite probes run in the service\'s probe worker pool.',
      );
    } finally {
      await stop();
    }
  },
};
