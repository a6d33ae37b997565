/**
 * Idle RSS of the real sidecar: `bin/disaster-recovery.js start-monitoring`
 * in its own process, probing but not scraped, read from /proc/<pid>/status.
 * Target (55 databases): < 120 MB.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseDocument } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { createDemoData } from '../src/demo-data.js';
import { freePort } from '../test/support/postgres.js';
import { sleep, withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import { countSqliteCopies, countUp, httpGet } from './http-get.js';
import type { Report } from './table.js';

const CHECK_INTERVAL_SECONDS = 2;
const SAMPLES = 6;
const SAMPLE_EVERY_MS = 1_000;
const STARTUP_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 10_000;
const RSS_TARGET_MB = 120;

interface IdleRun {
  maxRssMb: number;
  peakRssMb: number;
  databasesUp: number;
  /** SQLite secondaries the periodic copy reached before the scrape (expected 0: it is pushed out). */
  copies: number;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  exitMs: number;
}

/** A field of /proc/<pid>/status in bytes (the kernel's "kB" are KiB). */
function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  const kib = Number(/(\d+)\s*kB/.exec(line ?? '')?.[1]);
  if (!Number.isFinite(kib)) throw new Error(`no ${field} in /proc/${pid}/status`);
  return kib * 1024;
}

const MB = 1_000_000;

/** Starts the sidecar on `configFile`, lets it probe for two intervals, samples its RSS, stops it with SIGTERM. */
async function idleRun(ctx: BenchContext, configFile: string, cwd: string, port: number): Promise<IdleRun> {
  const bin = path.join(ctx.root, 'bin', 'disaster-recovery.js');
  const env = { ...process.env };
  delete env.DR_CONFIG;
  const child = spawn(process.execPath, ['--max-semi-space-size=2', bin, 'start-monitoring', '--config', configFile], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = ctx.cleanup.add(
    `sidecar pid ${child.pid}`,
    async () => {
      if (running()) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    () => child.kill('SIGKILL'),
  );
  const failure = (what: string) => new Error(`${what}; sidecar output: ${output.trim().split('\n').slice(-3).join(' | ') || '(none)'}`);
  try {
    const pid = child.pid!;
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (!running()) throw failure(`the sidecar exited (${child.signalCode ?? child.exitCode}) before /healthz answered`);
      const ok = await httpGet(`${base}/healthz`, 1_000).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw failure(`/healthz did not answer within ${STARTUP_TIMEOUT_MS / 1000} s`);
      await sleep(100);
    }
    await sleep(2 * CHECK_INTERVAL_SECONDS * 1000 + 500);

    let maxRss = 0;
    for (let i = 0; i < SAMPLES; i++) {
      if (i > 0) await sleep(SAMPLE_EVERY_MS);
      if (!running()) throw failure('the sidecar exited while idle');
      maxRss = Math.max(maxRss, procStatusBytes(pid, 'VmRSS'));
    }
    const peakRss = procStatusBytes(pid, 'VmHWM');
    // One scrape after the samples, to check the sidecar was probing everything meanwhile.
    const metrics = await httpGet(`${base}/metrics`, 5_000);
    if (metrics.status !== 200) throw failure(`/metrics answered HTTP ${metrics.status}`);

    const stopAsked = performance.now();
    child.kill('SIGTERM');
    const [exitCode, exitSignal] = await withTimeout(exited, EXIT_TIMEOUT_MS, 'the sidecar to exit after SIGTERM');
    return {
      maxRssMb: maxRss / MB,
      peakRssMb: peakRss / MB,
      databasesUp: countUp(metrics.body),
      copies: countSqliteCopies(metrics.body),
      exitCode,
      exitSignal,
      exitMs: performance.now() - stopAsked,
    };
  } finally {
    await kill();
  }
}

function reportRun(report: Report, label: string, run: IdleRun, databases: number, checkRss: boolean): void {
  if (checkRss) report.check(`idle RSS, ${label}`, run.maxRssMb, 'MB', '<', RSS_TARGET_MB, 1);
  else report.info(`idle RSS, ${label}`, run.maxRssMb, 'MB', 1);
  report.info(`peak RSS (VmHWM), ${label}`, run.peakRssMb, 'MB', 1);
  report.check(`databases up, ${label}`, run.databasesUp, `of ${databases}`, '=', databases, 0);
  if (run.copies > 0) report.info(`SQLite secondary copies made meanwhile (not idle!), ${label}`, run.copies, '', 0);
  report.check(`exit code after SIGTERM, ${label}`, run.exitCode ?? Number.NaN, run.exitSignal ? `(${run.exitSignal})` : '', '=', 0, 0);
  report.info(`exit time after SIGTERM, ${label}`, run.exitMs, 'ms', 0);
}

/** The shipped config/config.yaml in a dir of its own: its SQLite files made there, nothing but port, state, log level and interval changed. */
async function shippedConfig(ctx: BenchContext, port: number): Promise<{ file: string; cwd: string; databases: number }> {
  const cwd = path.join(ctx.tmp, 'shipped');
  await mkdir(cwd, { recursive: true });
  const doc = parseDocument(await readFile(path.join(ctx.root, 'config', 'config.yaml'), 'utf8'));
  doc.setIn(['server', 'port'], port);
  doc.setIn(['state', 'path'], path.join(cwd, 'dr-state.db'));
  doc.setIn(['logging', 'level'], 'error');
  doc.setIn(['disaster_recovery', 'monitoring', 'check_interval'], CHECK_INTERVAL_SECONDS);
  doc.setIn(['disaster_recovery', 'backup', 'backup_dir'], path.join(cwd, 'backups'));
  doc.setIn(['disaster_recovery', 'backup', 'enable_auto_backup'], false);
  doc.setIn(['disaster_recovery', 'failover', 'enable_auto_failover'], false);
  doc.setIn(['disaster_recovery', 'failover', 'sync_interval'], 3600);
  const text = doc.toString();
  const file = path.join(cwd, 'config.yaml');
  await writeFile(file, text);
  const config = parseConfig(text, file, process.env, cwd);
  createDemoData(config);
  return { file, cwd, databases: config.databases.filter((d) => d.enabled).length };
}

export const idleRssSection: Section = {
  title: 'idle RSS (bin/disaster-recovery.js start-monitoring, own process)',
  budgetMs: 90_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const fleet = await ctx.fleet();
    const dir = path.join(ctx.tmp, 'idle');
    await mkdir(dir, { recursive: true });
    const port = await freePort();
    const file = path.join(dir, 'config.yaml');
    await writeFile(
      file,
      fleet.configYaml({ port, statePath: path.join(dir, 'dr-state.db'), checkIntervalSeconds: CHECK_INTERVAL_SECONDS, logLevel: 'error' }),
    );
    reportRun(report, `${fleet.databases.length} databases`, await idleRun(ctx, file, dir, port), fleet.databases.length, true);

    const shippedPort = await freePort();
    const shipped = await shippedConfig(ctx, shippedPort);
    reportRun(report, `config/config.yaml (${shipped.databases} SQLite)`, await idleRun(ctx, shipped.file, shipped.cwd, shippedPort), shipped.databases, false);
    report.note(
      `idle RSS: the max of ${SAMPLES} VmRSS samples ${SAMPLE_EVERY_MS / 1000} s apart, taken from two check intervals after /healthz first answered; ` +
        `MB = 10^6 bytes. The sidecar ran with check_interval ${CHECK_INTERVAL_SECONDS} s, auto backup and auto failover off, ` +
        'SQLite secondary copies pushed out to sync_interval 3600 s (a row appears if one ran anyway), no scrapes while sampling ' +
        '(one scrape afterwards counts the databases up). config/config.yaml: the shipped file (3 SQLite, 1 disabled) with only port, state, ' +
        'log level, interval, backup and failover changed; its SQLite files made empty in a temp dir.',
    );
  },
};
