/**
 * Alertmanager webhook throughput with the 55 databases. A child process keeps
 * 50 deliveries in flight (keep-alive, loopback), each a distinct firing alert
 * that maps to no action, so each one is recorded in the state store, durably.
 * 1. Throughput: deliveries answered per second over THROUGHPUT_MS, nothing else asked of the sidecar.
 * 2. /metrics during the load: a second child scrapes every SCRAPE_EVERY_MS (a
 *    scraper arrives at any moment of the load, as Prometheus does), each scrape timed.
 * The sidecar (HTTP server, monitor probing every 2 s) runs in the bench process.
 * Targets: > 2,000 deliveries/s; /metrics p99 < 10 ms during the load.
 * Bounded: the load stops after MAX_LOAD_MS or MAX_REQUESTS, whichever comes first.
 * The same module is both children: forked with `--webhook-load` or `--metrics-paced`.
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
import { sleep, withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import { countUp } from './http-get.js';
import { openService } from './service.js';
import { max, median, percentile } from './stats.js';
import type { Report } from './table.js';

const CONCURRENCY = 50;
const WARMUP_REQUESTS = 2_000;
const THROUGHPUT_MS = 5_000;
const SCRAPES = 400;
const SCRAPE_EVERY_MS = 25;
const IDLE_SCRAPES = 200;
const SCRAPER_WARMUP = 5;
const MAX_REQUESTS = 200_000;
const MAX_LOAD_MS = 40_000;
const CHECK_INTERVAL_SECONDS = 2;
const THROUGHPUT_TARGET = 2_000;
const P99_TARGET_MS = 10;
const REQUEST_TIMEOUT_MS = 5_000;
const TOKEN = 'bench-webhook-token';

interface LoadResult {
  /** Each delivery's time, request written to answer read, after the warm-up. */
  durationsMs: number[];
  /** Answers by HTTP status, warm-up included. */
  statuses: Record<string, number>;
  /** The load stopped at MAX_LOAD_MS / MAX_REQUESTS rather than when asked. */
  bounded: boolean;
  error?: string;
}

interface ScrapeResult {
  durationsMs: number[];
  databasesUp: number;
  error?: string;
}

/** Child → parent. `mark` answers a `mark` request: deliveries answered so far (warm-up excluded) and when. */
type LoadMessage = { kind: 'ready' } | { kind: 'mark'; answered: number; atMs: number } | { kind: 'done'; result: LoadResult };

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

function request(agent: http.Agent, url: URL, method: 'GET' | 'POST', headers: http.OutgoingHttpHeaders, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${url.href}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function loadMain(url: URL, token: string): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const result: LoadResult = { durationsMs: [], statuses: {}, bounded: false };
  let next = 0;
  let stop = false;
  process.on('message', (m) => {
    if (m === 'stop') stop = true;
    if (m === 'mark') process.send!({ kind: 'mark', answered: result.durationsMs.length, atMs: performance.now() } satisfies LoadMessage);
  });
  const run = async (limit: number, measured: boolean, deadline: number) => {
    const worker = async () => {
      while (!stop && next < limit && performance.now() < deadline) {
        const n = next++;
        const body = delivery(n);
        const started = performance.now();
        const { status } = await request(agent, url, 'POST', { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` }, body);
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
    await run(WARMUP_REQUESTS + MAX_REQUESTS, true, performance.now() + MAX_LOAD_MS);
    result.bounded = !stop;
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    agent.destroy();
  }
  return result;
}

/** GET /metrics every `everyMs` (one keep-alive connection), each one timed. */
async function scrapeMain(url: URL, count: number, everyMs: number): Promise<ScrapeResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const result: ScrapeResult = { durationsMs: [], databasesUp: 0 };
  try {
    // Untimed: the scraper's own first requests (a new process, its connection opened, its code cold).
    for (let i = 0; i < SCRAPER_WARMUP; i++) await request(agent, url, 'GET', {});
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const answer = await request(agent, url, 'GET', {});
      result.durationsMs.push(performance.now() - started);
      if (answer.status !== 200) throw new Error(`GET ${url.href}: HTTP ${answer.status}`);
      if (i === count - 1) result.databasesUp = countUp(answer.body);
      await sleep(Math.max(0, started + everyMs - performance.now()));
    }
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
} else if (process.argv[2] === '--metrics-paced' && process.send) {
  const result = await scrapeMain(new URL(process.argv[3]!), Number(process.argv[4]), Number(process.argv[5]));
  process.send(result, () => process.disconnect());
}

// ---------------------------------------------------------------------------
// The section
// ---------------------------------------------------------------------------

const THIS_MODULE = fileURLToPath(import.meta.url);

/** Forks this module in a child role; cleanup kills it. */
function child(ctx: BenchContext, what: string, args: string[]): { proc: ChildProcess; exited: Promise<unknown>; kill: () => Promise<void> } {
  const proc = fork(THIS_MODULE, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

/** The child's next message that `accept` takes; rejects if it exits first or after `ms`. */
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

const isKind =
  <K extends LoadMessage['kind']>(kind: K) =>
  (m: unknown): m is Extract<LoadMessage, { kind: K }> =>
    (m as LoadMessage)?.kind === kind;
const isScrape = (m: unknown): m is ScrapeResult => Array.isArray((m as ScrapeResult)?.durationsMs);

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
        const scrape = async (count: number): Promise<ScrapeResult> => {
          const scraper = child(ctx, '/metrics scraper', ['--metrics-paced', `${server.url}/metrics`, String(count), String(SCRAPE_EVERY_MS)]);
          try {
            const got = await message(scraper.proc, scraper.exited, 'the /metrics scraper', isScrape, count * (SCRAPE_EVERY_MS + REQUEST_TIMEOUT_MS) + 10_000);
            if (got.error) throw new Error(`/metrics: after ${got.durationsMs.length} scrapes: ${got.error}`);
            return got;
          } finally {
            await scraper.kill();
          }
        };
        // For comparison: the same scrapes without deliveries (the monitor probing as during the load).
        const idle = await scrape(IDLE_SCRAPES);

        const load = child(ctx, 'webhook load client', ['--webhook-load', `${server.url}/alertmanager/webhook`, TOKEN]);
        try {
          const done = message(load.proc, load.exited, 'the webhook load client', isKind('done'), MAX_LOAD_MS * 2 + 30_000);
          done.catch(() => undefined);
          await message(load.proc, load.exited, 'the webhook load client warm-up', isKind('ready'), MAX_LOAD_MS + 10_000);
          const mark = async () => {
            const reply = message(load.proc, load.exited, 'the webhook load client', isKind('mark'), 10_000);
            load.proc.send('mark');
            return reply;
          };

          // 1. Throughput, nothing else asked of the sidecar.
          const cpuBefore = process.cpuUsage();
          const m0 = await mark();
          await sleep(THROUGHPUT_MS);
          const m1 = await mark();
          const cpu = process.cpuUsage(cpuBefore);
          const answered = m1.answered - m0.answered;
          const rps = answered / ((m1.atMs - m0.atMs) / 1000);

          // 2. Scrapes at any moment of the load.
          const loopDelay = monitorEventLoopDelay({ resolution: 1 });
          loopDelay.enable();
          let scrapes: ScrapeResult;
          try {
            scrapes = await scrape(SCRAPES);
          } finally {
            loopDelay.disable();
          }
          const m2 = await mark();
          if (load.proc.connected) load.proc.send('stop');
          const { result } = await done;
          if (result.error) throw new Error(`webhook load: ${result.error}`);
          await service.alerts.drain();

          report.check(`POST /alertmanager/webhook: deliveries/s, ${CONCURRENCY} in flight`, rps, '/s', '>=', THROUGHPUT_TARGET, 0);
          report.info('sidecar CPU per delivery (user + system, probes included)', (cpu.user + cpu.system) / 1000 / answered, 'ms', 3);
          const d = result.durationsMs;
          report.info(`POST /alertmanager/webhook: median / p99 / max of ${d.length}`, `${median(d).toFixed(2)} / ${percentile(d, 99).toFixed(2)} / ${max(d).toFixed(2)} ms`);
          const i = idle.durationsMs;
          report.info(`GET /metrics without deliveries: median / p99 of ${i.length}`, `${median(i).toFixed(2)} / ${percentile(i, 99).toFixed(2)} ms`);
          const s = scrapes.durationsMs;
          report.info(`GET /metrics during the load: median of ${s.length}`, median(s), 'ms');
          report.check(`GET /metrics during the load: p99 of ${s.length}`, percentile(s, 99), 'ms', '<', P99_TARGET_MS);
          report.info(`GET /metrics during the load: max of ${s.length}`, max(s), 'ms');
          report.info('deliveries/s while scraped', (m2.answered - m1.answered) / ((m2.atMs - m1.atMs) / 1000), '/s', 0);
          report.info('sidecar event loop delay while scraped: p99 / max', `${(loopDelay.percentile(99) / 1e6).toFixed(1)} / ${(loopDelay.max / 1e6).toFixed(1)} ms`);
          report.check('/metrics during the load: databases with dr_database_up 1', scrapes.databasesUp, `of ${config.databases.length}`, '=', config.databases.length, 0);

          // Every delivery was a distinct alert: each answered 200 and recorded once, none a duplicate, none acted on.
          const sent = WARMUP_REQUESTS + d.length;
          const body = await service.metrics.expose();
          report.check('deliveries answered 200 (warm-up included)', result.statuses['200'] ?? 0, `of ${sent}`, '=', sent, 0);
          report.check('alerts recorded (dr_alert_notifications_total, none/recorded)', series(body, 'dr_alert_notifications_total{action="none",result="recorded"}'), `of ${sent}`, '=', sent, 0);
          report.check('duplicates among distinct alerts', series(body, 'dr_alert_notifications_total{action="none",result="duplicate"}'), '', '=', 0, 0);
          if (result.bounded) report.note(`webhook: the deliveries stopped at their bound (${MAX_LOAD_MS / 1000} s or ${MAX_REQUESTS} deliveries) before the scrapes were done; the last scrapes met no load.`);
          report.note(
            `webhook: ${CONCURRENCY} deliveries kept in flight by a child process (node:http keep-alive agent, ${CONCURRENCY} connections), each a distinct ` +
              `firing alert with dr_action none, so each one is a new row in the SQLite state store (its own connection, synchronous=NORMAL); the sidecar works on 4 deliveries at a time, the others wait their turn; ${WARMUP_REQUESTS} warm-up ` +
              `deliveries not counted. Throughput over ${THROUGHPUT_MS / 1000} s with nothing else asked of the sidecar; then a second child scraped ` +
              `/metrics every ${SCRAPE_EVERY_MS} ms (${SCRAPES} scrapes, after ${SCRAPER_WARMUP} untimed ones that open its connection; ${IDLE_SCRAPES} before the load for comparison). Server in the bench process, ` +
              `monitor probing the ${config.databases.length} databases every ${CHECK_INTERVAL_SECONDS} s throughout.`,
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
