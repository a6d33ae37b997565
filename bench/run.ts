/**
 * `npm run bench`: measures the sidecar and prints a table (measurement,
 * value, target, verdict). A missed target is reported, not failed: the exit
 * code is 0 unless a section could not measure at all. Add a section by
 * writing a module that exports a `Section` and listing it below.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup, withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import { backupSection } from './backup.js';
import { createFleet, type Fleet } from './fleet.js';
import { drillSection } from './drill.js';
import { failoverSection } from './failover.js';
import { idleRssSection } from './idle-rss.js';
import { integritySection } from './integrity.js';
import { libraryCheckSection } from './library-check.js';
import { metricsLatencySection } from './metrics-latency.js';
import { offsiteSection } from './offsite.js';
import { periodicCopySection } from './periodic-copy.js';
import { pgArchiveSection } from './pg-archive.js';
import { probeCycleSection } from './probes.js';
import { sidecarsSection } from './sidecars.js';
import { sqliteArchiveSection } from './sqlite-archive.js';
import { renderTable, Report } from './table.js';
import { tracingSection } from './tracing.js';
import { walShippingSection } from './wal-shipping.js';
import { webhookSection } from './webhook.js';

const ALL_SECTIONS: Section[] = [probeCycleSection, metricsLatencySection, idleRssSection, tracingSection, webhookSection, failoverSection, drillSection, periodicCopySection, walShippingSection, backupSection, integritySection, libraryCheckSection, sidecarsSection, offsiteSection, pgArchiveSection, sqliteArchiveSection];
/** `BENCH_SECTIONS=probe,tracing npm run bench` runs only the sections whose titles contain one of the words. */
const wanted = (process.env.BENCH_SECTIONS ?? '').split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
const SECTIONS = wanted.length === 0 ? ALL_SECTIONS : ALL_SECTIONS.filter((s) => wanted.some((w) => s.title.toLowerCase().includes(w)));
const FLEET_TIMEOUT_MS = 60_000;
/** The whole run, cleanup included; past it the bench prints what it has and exits 1. */
const WATCHDOG_MS = 240_000 + drillSection.budgetMs + tracingSection.budgetMs + backupSection.budgetMs + integritySection.budgetMs + libraryCheckSection.budgetMs + sidecarsSection.budgetMs + walShippingSection.budgetMs + offsiteSection.budgetMs + pgArchiveSection.budgetMs + sqliteArchiveSection.budgetMs;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const started = Date.now();
const loadAtStart = os.loadavg();
const progress = (text: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)} s] ${text}\n`);

function header(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  return (
    `dr-sidecar bench, ${new Date().toISOString()}, node ${process.version}, ${os.cpus().length} x ${cpu}\n` +
    `load average (1, 5, 15 min) at start ${load(loadAtStart)}, at end ${load(os.loadavg())}\n\n`
  );
}

async function main(report: Report, cleanup: Cleanup): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dr-bench-'));
  cleanup.add(`temp dir ${tmp}`, () => rm(tmp, { recursive: true, force: true }), () => rmSync(tmp, { recursive: true, force: true }));
  let fleet: Promise<Fleet> | undefined;
  const ctx: BenchContext = {
    root: ROOT,
    tmp,
    cleanup,
    fleet: () => (fleet ??= withTimeout(createFleet(tmp, cleanup), FLEET_TIMEOUT_MS, 'making the 55 databases')),
  };
  try {
    for (const section of SECTIONS) {
      progress(section.title);
      report.begin(section.title);
      try {
        await withTimeout(section.run(ctx, report), section.budgetMs, section.title);
      } catch (error) {
        report.error('could not measure', (error as Error).message);
        progress(`${section.title} failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
  } finally {
    progress('cleaning up');
    const failures = await cleanup.runAll();
    if (failures.length > 0) {
      report.begin('cleanup');
      for (const failure of failures) report.error('cleanup failed', failure);
    }
  }
}

const report = new Report();
const cleanup = new Cleanup();
process.on('exit', () => cleanup.runSync());
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    report.begin('bench');
    report.error('interrupted', `${signal} before the end: the figures above are all there is`);
    process.stdout.write(header() + renderTable(report));
    process.exit(code);
  });
}
const watchdog = setTimeout(() => {
  report.begin('bench');
  report.error('gave up', `the bench took longer than ${WATCHDOG_MS / 1000} s`);
  process.stdout.write(header() + renderTable(report));
  process.exit(1);
}, WATCHDOG_MS);

try {
  await main(report, cleanup);
} catch (error) {
  report.begin('bench');
  report.error('failed', (error as Error).message);
}
clearTimeout(watchdog);
process.stdout.write(header() + renderTable(report));
progress('done');
process.exitCode = report.count('ERROR') > 0 ? 1 : 0;
// Everything was closed above; if some handle still keeps the process alive, do not hang.
setTimeout(() => {
  progress('a handle was left open; exiting anyway');
  process.exit();
}, 5_000).unref();
