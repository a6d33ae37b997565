/**
 * The cost of the periodic integrity check (`monitoring.integrity_check_interval`):
 * `PRAGMA quick_check` of a BENCH_INTEGRITY_MB (default 1024) MB SQLite file, run
 * as the sidecar runs it (a child process per check, engines/sqlite-integrity.ts),
 * with the page cache warm (the file was just written; dropping the machine's
 * caches would disturb everything else on it). Reported: wall time per check,
 * its share of the default 300 s interval, and the longest stall of this
 * process's event loop meanwhile (the check runs in another process: ~none).
 */
import { mkdir } from 'node:fs/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { silentLogger } from '../src/log.js';
import { SqliteIntegrityChecks } from '../src/engines/sqlite-integrity.js';
import { makeSqlite } from './backup.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';

const SIZE_MB = Number(process.env.BENCH_INTEGRITY_MB ?? 1024);
const RUNS = 3;
const DEFAULT_INTERVAL_S = 300;
const MB = 1_000_000;
const IDLE_MS = 10_000;

/** One check through the sidecar's own scheduler, asked for as a probe asks; resolves with its wall time. */
async function timedCheck(file: string): Promise<{ seconds: number; problem: string | undefined }> {
  const checks = new SqliteIntegrityChecks(DEFAULT_INTERVAL_S, silentLogger(), 600_000);
  checks.start();
  const stat = statSync(file);
  const key = `${stat.dev}:${stat.ino}`;
  const started = performance.now();
  checks.problem(file, key);
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 20));
      // A verdict is kept once the check answered: `ok` leaves none, so ask the scheduler whether it still runs.
      if (!checks.busy()) return { seconds: (performance.now() - started) / 1000, problem: checks.problem(file, key) };
    }
  } finally {
    await checks.close();
  }
}

export const integritySection: Section = {
  title: `SQLite quick_check (${SIZE_MB} MB file)`,
  budgetMs: 420_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const dir = path.join(ctx.tmp, 'integrity');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'images.db');
    const made = performance.now();
    makeSqlite(file, SIZE_MB * MB);
    const bytes = statSync(file).size;
    report.info('file size', bytes / MB, 'MB', 0);
    report.info('time to make the file (not part of the check)', (performance.now() - made) / 1000, 's', 1);
    // The same process idle for as long, first: on a loaded machine scheduling alone stalls a loop.
    const idle = monitorEventLoopDelay({ resolution: 10 });
    idle.enable();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    idle.disable();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const run = await timedCheck(file);
      if (run.problem) throw new Error(`quick_check of a healthy file failed: ${run.problem}`);
      runs.push(run.seconds);
    }
    delay.disable();
    const median = [...runs].sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
    report.info(`quick_check wall time, ${RUNS} runs (warm page cache)`, runs.map((s) => s.toFixed(2)).join(' / ') + ' s');
    report.check('quick_check wall time, median', median, 's', '<', 30, 2);
    report.info('quick_check throughput', bytes / MB / median, 'MB/s', 0);
    report.check(`share of the default ${DEFAULT_INTERVAL_S} s interval spent checking`, (median / DEFAULT_INTERVAL_S) * 100, '%', '<', 10, 2);
    report.check('longest event-loop stall of the sidecar process during the checks', delay.max / 1e6, 'ms', '<', 50, 1);
    report.info(`longest event-loop stall of the same process idle for ${IDLE_MS / 1000} s before`, idle.max / 1e6, 'ms', 1);
    report.info('event-loop delay p99 during the checks / idle', `${(delay.percentile(99) / 1e6).toFixed(1)} / ${(idle.percentile(99) / 1e6).toFixed(1)} ms`);
  },
};
