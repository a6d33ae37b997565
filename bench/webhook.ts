/**
 * Alertmanager webhook throughput with the 55 databases: a child process keeps
 * 50 deliveries in flight (keep-alive, loopback), each a distinct firing alert
 * that maps to no action (so each is recorded in the state store, durably), while
 * a second child scrapes GET /metrics one request at a time. The sidecar (server,
 * monitor probing every 2 s) runs in the bench process.
 * Targets: > 2,000 deliveries/s; /metrics p99 < 10 ms during the load.
 * Bounded: at most MAX_REQUESTS deliveries or MAX_LOAD_MS, whichever comes first.
 * The same module is the load child: forked with `--webhook-load`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { createApp } from '../src/http/app.js';
import { listen } from '../src/http/server.js';
import { silentLogger } from '../src/log.js';
import { withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import type { MetricsClientResult } from './metrics-client.js';
import { openService } from './service.js';
import { max, median, percentile } from './stats.js';
import type { Report } from './table.js';

const CONCURRENCY = 50;
const WARMUP_REQUESTS = 2_000;
const MAX_REQUESTS = 200_000;
const MAX_LOAD_MS = 30_000;
const METRICS_WARMUP = 50;
const METRICS_REQUESTS = 1_000;
const METRICS_IDLE_REQUESTS = 300;
const CHECK_INTERVAL_SECONDS = 2;
const THROUGHPUT_TARGET = 2_000;
const P99_TARGET_MS = 10;
const REQUEST_TIMEOUT_MS = 5_000;
const TOKEN = 'bench-webhook-token';

interface LoadResult {
  /** Deliveries answered during the measured phase (after the warm-up). */
  durationsMs: number[];
  elapsedMs: number;
  warmup: number;
  /** Answers by HTTP status, warm-up included. */
  statuses: Record<string, number>;
  error?: string;
}

type LoadMessage = { kind: 'ready' } | { kind: 'done'; result: LoadResult };

// ---------------------------------------------------------------------------
// The load child
// ---------------------------------------------------------------------------

/** A version-4 delivery of one firing alert that asks for no action; `n` makes it distinct. */
function delivery(n: number): string {
  const fingerprint = `${process.pid.toString(16)}${n.toString(16).padStart(10, '0')}`;
  return JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="DrBenchLoad", n="${n}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'dr-sidecar',
    groupLabels: { alertname: 'DrBenchLoad' },
    commonLabels: { alertname: 'DrBenchLoad', severity: 'warning', dr_action: 'none', database: 'sqlite01' },
    commonAnnotations: { summary: 'bench load' },
    externalURL: 'http://127.0.0.1:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'DrBenchLoad', severity: 'warning', rule: 'bench', dr_action: 'none', database: 'sqlite01', instance: '127.0.0.1:9898', job: 'dr-sidecar' },
        annotations: { summary: 'sqlite01: bench load', description: 'A distinct alert of the webhook bench; it asks for no action.' },
        startsAt: new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://127.0.0.1:9090/graph',
        fingerprint,
      },
    ],
  });
}

function post(agent: http.Agent, url: URL, token: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`POST ${url.href}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function loadMain(url: URL, token: string): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const result: LoadResult = { durationsMs: [], elapsedMs: 0, warmup: WARMUP_REQUESTS, statuses: {} };
  let next = 0;
  let stop = false;
  process.on('message', () => (stop = true));
  const run = async (limit: number, measured: boolean, deadline: number) => {
    const worker = async () => {
      while (!stop && next < limit && performance.now() < deadline) {
        const n = next++;
        const started = performance.now();
        const status = await post(agent, url, token, delivery(n));
        if (measured) result.durationsMs.push(performance.now() - started);
        result.statuses[status] = (result.statuses[status] ?? 0) + 1;
        if (status !== 200) throw new Error(`delivery ${n}: HTTP ${status}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  try {
    await run(WARMUP_REQUESTS, false, performance.now() + MAX_LOAD_MS);
    process.send!({ kind: 'ready' } satisfies LoadMessage);
    const started = performance.now();
    await run(WARMUP_REQUESTS + MAX_REQUESTS, true, started + MAX_LOAD_MS);
    result.elapsedMs = performance.now() - started;
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    agent.destroy();
  }
  return result;
}

if (process.argv[2] === '--webhook-load' && process.send) {
  const result = await loadMain(new URL(process.argv[3]!), process.argv[4]!);
  process.send({ kind: 'done', result } satisfies LoadMessage, () => process.disconnect());
}

// ---------------------------------------------------------------------------
// The section
// ---------------------------------------------------------------------------

/** Forks a child, kills it on cleanup, rejects if it exits before `settled` does. */
function child(ctx: BenchContext, what: string, module: string | URL, args: string[]): { proc: ChildProcess; exited: Promise<unknown>; kill: () => Promise<void> } {
  const proc = fork(module, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(proc, 'exit');
  const kill = ctx.cleanup.add(
    `${what} pid ${proc.pid}`,
    async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
    () => proc.kill('SIGKILL'),
  );
  return { proc, exited, kill };
}

function message<T>(proc: ChildProcess, exited: Promise<unknown>, what: string, accept: (m: unknown) => m is T, ms: number): Promise<T> {
  const got = new Promise<T>((resolve) => {
    const on = (m: unknown) => {
      if (!accept(m)) return;
      proc.off('message', on);
      resolve(m);
    };
    proc.on('message', on);
  });
  const died = exited.then(() => {
    throw new Error(`${what} exited before it reported`);
  });
  died.catch(() => undefined);
  return withTimeout(Promise.race([got, died]), ms, what);
}

/** Value of one counter series in a /metrics body. */
function series(body: string, line: string): number {
  const found = body.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

export const webhookSection: Section = {
  title: 'webhook throughput (55 databases, 50 concurrent deliveries)',
  budgetMs: 90_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const fleet = await ctx.fleet();
    const doc = parseDocument(fleet.configYaml({ port: 0, statePath: path.join(ctx.tmp, 'webhook-state.db'), checkIntervalSeconds: CHECK_INTERVAL_SECONDS }));
    doc.setIn(['server', 'auth_token'], TOKEN);
    const { config, service, stop: stopService } = await openService(ctx, 'webhook', doc.toString());
    try {
      await service.monitor.probeAll();
      await service.start();
      const server = await listen(createApp(service, silentLogger()), '127.0.0.1', 0);
      const closeServer = ctx.cleanup.add('webhook HTTP server', () => server.close());
      try {
        const scrape = async (count: number): Promise<MetricsClientResult> => {
          const metrics = child(ctx, '/metrics client', new URL('./metrics-client.js', import.meta.url), [`${server.url}/metrics`, String(METRICS_WARMUP), String(count)]);
          try {
            const got = await message(metrics.proc, metrics.exited, 'the /metrics client', (m): m is MetricsClientResult => Array.isArray((m as MetricsClientResult)?.durationsMs), 60_000);
            if (got.error) throw new Error(`/metrics: after ${got.durationsMs.length} requests: ${got.error}`);
            return got;
          } finally {
            await metrics.kill();
          }
        };
        // For comparison: the same scrapes without deliveries (the monitor probing as during the load).
        const idle = await scrape(METRICS_IDLE_REQUESTS);
        const load = child(ctx, 'webhook load client', fileURLToPath(import.meta.url), ['--webhook-load', `${server.url}/alertmanager/webhook`, TOKEN]);
        try {
          const isReady = (m: unknown): m is LoadMessage => (m as LoadMessage)?.kind === 'ready';
          const isDone = (m: unknown): m is Extract<LoadMessage, { kind: 'done' }> => (m as LoadMessage)?.kind === 'done';
          const done = message(load.proc, load.exited, 'the webhook load client', isDone, MAX_LOAD_MS * 2 + 30_000);
          done.catch(() => undefined);
          await message(load.proc, load.exited, 'the webhook load client warm-up', isReady, MAX_LOAD_MS + 10_000);

          // /metrics scraped one request at a time while the deliveries go on.
          const cpuBefore = process.cpuUsage();
          const loopDelay = monitorEventLoopDelay({ resolution: 1 });
          loopDelay.enable();
          let scrapes: MetricsClientResult;
          try {
            scrapes = await scrape(METRICS_REQUESTS);
          } finally {
            if (load.proc.connected) load.proc.send('stop');
          }
          const { result } = await done;
          loopDelay.disable();
          const cpu = process.cpuUsage(cpuBefore);
          if (result.error) throw new Error(`webhook load: ${result.error}`);
          await service.alerts.drain();

          const d = result.durationsMs;
          const rps = d.length / (result.elapsedMs / 1000);
          report.check(`POST /alertmanager/webhook: deliveries/s, ${CONCURRENCY} in flight`, rps, '/s', '>=', THROUGHPUT_TARGET, 0);
          report.info(`POST /alertmanager/webhook: median / p99 / max of ${d.length}`, `${median(d).toFixed(2)} / ${percentile(d, 99).toFixed(2)} / ${max(d).toFixed(2)} ms`);
          // Scrapes and probes included: an upper bound of what one delivery costs the sidecar.
          report.info('sidecar CPU per delivery (user + system, whole process)', (cpu.user + cpu.system) / 1000 / d.length, 'ms', 3);
          report.info('sidecar event loop delay during the load: p99 / max', `${(loopDelay.percentile(99) / 1e6).toFixed(1)} / ${(loopDelay.max / 1e6).toFixed(1)} ms`);
          const i = idle.durationsMs;
          report.info(`GET /metrics without deliveries: median / p99 of ${i.length}`, `${median(i).toFixed(2)} / ${percentile(i, 99).toFixed(2)} ms`);
          const m = scrapes.durationsMs;
          report.info(`GET /metrics during the load: median of ${m.length}`, median(m), 'ms');
          report.check(`GET /metrics during the load: p99 of ${m.length}`, percentile(m, 99), 'ms', '<', P99_TARGET_MS);
          report.info(`GET /metrics during the load: max of ${m.length}`, max(m), 'ms');
          report.check('/metrics during the load: databases with dr_database_up 1', scrapes.databasesUp, `of ${config.databases.length}`, '=', config.databases.length, 0);

          // Every delivery was a distinct alert: each recorded once, none a duplicate, none acted on.
          const sent = result.warmup + d.length;
          const body = await service.metrics.expose();
          const recorded = series(body, 'dr_alert_notifications_total{action="none",result="recorded"}');
          report.check('deliveries answered 200 (warm-up included)', result.statuses['200'] ?? 0, `of ${sent}`, '=', sent, 0);
          report.check('alerts recorded once each (dr_alert_notifications_total recorded)', recorded, `of ${sent}`, '=', sent, 0);
          report.check('duplicates among distinct alerts', series(body, 'dr_alert_notifications_total{action="none",result="duplicate"}'), '', '=', 0, 0);
          if (result.elapsedMs >= MAX_LOAD_MS - 50) {
            report.note(`webhook: the deliveries stopped at their ${MAX_LOAD_MS / 1000} s bound before the ${METRICS_REQUESTS} scrapes were done; the last scrapes met no load.`);
          }
          report.note(
            `webhook: ${CONCURRENCY} deliveries kept in flight by a child process (node:http keep-alive agent, ${CONCURRENCY} connections), each a distinct ` +
              `firing alert with dr_action none, so each one is a new row in the SQLite state store (synchronous=FULL); ${result.warmup} warm-up ` +
              `deliveries not counted; the measured phase lasted ${(result.elapsedMs / 1000).toFixed(1)} s (until ${METRICS_REQUESTS} sequential /metrics ` +
              `requests from a second child process were done). Server in the bench process, monitor probing the ${config.databases.length} databases every ${CHECK_INTERVAL_SECONDS} s.`,
          );
        } finally {
          await load.kill();
        }
      } finally {
        await closeServer();
      }
    } finally {
      await stopService();
    }
  },
};
