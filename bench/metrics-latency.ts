/**
 * /metrics latency with the 55 databases: 2,000 sequential scrapes over one
 * keep-alive connection, from a child process (so the client's own work does
 * not share the server's event loop). Target: p99 < 10 ms.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { createApp } from '../src/http/app.js';
import { listen } from '../src/http/server.js';
import { silentLogger } from '../src/log.js';
import { withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import type { MetricsClientResult } from './metrics-client.js';
import { openService } from './service.js';
import { max, median, percentile } from './stats.js';
import type { Report } from './table.js';

const WARMUP_REQUESTS = 100;
const REQUESTS = 2_000;
const CHECK_INTERVAL_SECONDS = 2;
const P99_TARGET_MS = 10;
const CLIENT_TIMEOUT_MS = 60_000;

async function runClient(ctx: BenchContext, url: string): Promise<MetricsClientResult> {
  const child = fork(new URL('./metrics-client.js', import.meta.url), [url, String(WARMUP_REQUESTS), String(REQUESTS)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const kill = ctx.cleanup.add(
    `metrics client pid ${child.pid}`,
    async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    () => child.kill('SIGKILL'),
  );
  try {
    const reported = once(child, 'message') as Promise<[MetricsClientResult]>;
    const died = exited.then(([code, signal]) => {
      throw new Error(`the /metrics client exited (${signal ?? code}) without a result`);
    });
    died.catch(() => undefined); // after a normal report the client exits too: not an error then
    const [message] = await withTimeout(Promise.race([reported, died]), CLIENT_TIMEOUT_MS, 'the /metrics client');
    await withTimeout(exited, 5_000, 'the /metrics client to exit');
    return message;
  } finally {
    await kill();
  }
}

interface GcPauses {
  count: number;
  /** Mark-sweep-compact collections (the long ones); the rest are mostly scavenges. */
  major: number;
  totalMs: number;
  maxMs: number;
}

/** Runs `fn` and records the garbage-collection pauses of this process's main thread meanwhile. */
async function watchGc<T>(fn: () => Promise<T>): Promise<[T, GcPauses]> {
  const pauses: GcPauses = { count: 0, major: 0, totalMs: 0, maxMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      pauses.count++;
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) pauses.major++;
      pauses.totalMs += entry.duration;
      pauses.maxMs = Math.max(pauses.maxMs, entry.duration);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    return [await fn(), pauses];
  } finally {
    observer.disconnect();
  }
}

function reportPhase(report: Report, phase: string, [result, gc]: [MetricsClientResult, GcPauses], databases: number): void {
  if (result.error) throw new Error(`${phase}: after ${result.durationsMs.length} requests: ${result.error}`);
  const d = result.durationsMs;
  report.info(`GET /metrics, ${phase}: median of ${d.length}`, median(d), 'ms');
  report.check(`GET /metrics, ${phase}: p99 of ${d.length}`, percentile(d, 99), 'ms', '<', P99_TARGET_MS);
  report.info(`GET /metrics, ${phase}: max of ${d.length}`, max(d), 'ms');
  report.info(`${phase}: response body size`, result.bodyBytes / 1024, 'KiB', 1);
  report.check(`${phase}: databases with dr_database_up 1`, result.databasesUp, `of ${databases}`, '=', databases, 0);
  report.info(`${phase}: requests over a reused connection`, `${result.reused} of ${d.length}`);
  report.info(
    `${phase}: server GC pauses (count/major, total, longest)`,
    `${gc.count}/${gc.major}, ${gc.totalMs.toFixed(0)} ms, ${gc.maxMs.toFixed(1)} ms`,
  );
}

export const metricsLatencySection: Section = {
  title: '/metrics latency (55 databases)',
  budgetMs: 90_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const fleet = await ctx.fleet();
    const yaml = fleet.configYaml({ port: 0, statePath: path.join(ctx.tmp, 'metrics-state.db'), checkIntervalSeconds: CHECK_INTERVAL_SECONDS });
    const { config, service, stop: stopService } = await openService(ctx, 'metrics-latency', yaml);
    try {
      await service.monitor.probeAll();
      const server = await listen(createApp(service, silentLogger()), '127.0.0.1', 0);
      const closeServer = ctx.cleanup.add('metrics-latency HTTP server', () => server.close());
      try {
        const url = `${server.url}/metrics`;
        // 1. Quiet: the monitor holds every database's state but probes nothing meanwhile.
        const quiet = await watchGc(() => runClient(ctx, url));
        reportPhase(report, 'monitor idle', quiet, config.databases.length);
        // 2. Busy: the monitor probes all 55 every CHECK_INTERVAL_SECONDS while the scrapes run.
        let probes = 0;
        service.monitor.on('probe', () => probes++);
        await service.start();
        const busy = await watchGc(() => runClient(ctx, url));
        reportPhase(report, `probing every ${CHECK_INTERVAL_SECONDS} s`, busy, config.databases.length);
        report.note(
          `/metrics: client in a child process (node:http, keep-alive agent, one connection, ${WARMUP_REQUESTS} warm-up requests not counted), ` +
            'server in the bench process. "monitor idle": state from one probeAll, no probes during the requests; ' +
            `"probing every ${CHECK_INTERVAL_SECONDS} s": monitor started, ${probes} probes (~${(probes / config.databases.length).toFixed(1)} cycles) ` +
            'ran during the requests (in production, with check_interval 30 s, at most one cycle would meet 2,000 scrapes).',
        );
      } finally {
        await closeServer();
      }
    } finally {
      await stopService();
    }
  },
};
