/**
 * Tracing on vs off: the same probe cycles over the 55 databases in a child
 * process started with and without OTEL_EXPORTER_OTLP_ENDPOINT (pointing at a
 * local collector that accepts and drops the spans), alternated to even out
 * load drift. Target: the cycle median differs by less than 5 %.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { BenchContext, Section } from './context.js';
import { median } from './stats.js';
import type { Report } from './table.js';

const ROUNDS = 5;

function runChild(ctx: BenchContext, configFile: string, endpoint: string | undefined): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
    if (endpoint) env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    const child = spawn(process.execPath, ['--max-semi-space-size=2', path.join(ctx.root, 'dist/bench/tracing-child.js'), configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`tracing child exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
      resolve((JSON.parse(out.trim().split('\n').pop()!) as { cycles: number[] }).cycles);
    });
  });
}

export const tracingSection: Section = {
  title: 'tracing on vs off (probe cycle over the 55 databases)',
  budgetMs: 180_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    let spans = 0;
    const collector = http.createServer((req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        spans++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const stopCollector = ctx.cleanup.add('OTLP collector', () => new Promise<void>((r) => collector.close(() => r())));
    try {
      const fleet = await ctx.fleet();
      const configFile = path.join(ctx.tmp, 'tracing-config.yaml');
      writeFileSync(configFile, fleet.configYaml({ port: 0, statePath: path.join(ctx.tmp, 'tracing-state.db'), checkIntervalSeconds: 30 }));
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
      const off: number[] = [];
      const on: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        off.push(...(await runChild(ctx, configFile, undefined)));
        on.push(...(await runChild(ctx, configFile, endpoint)));
      }
      const offMedian = median(off);
      const onMedian = median(on);
      report.info(`cycle median, tracing off (${off.length} cycles)`, offMedian, 'ms');
      report.info(`cycle median, tracing on, OTLP/HTTP to a local collector (${on.length} cycles)`, onMedian, 'ms');
      report.check('difference on vs off', ((onMedian - offMedian) / offMedian) * 100, '%', '<', 5, 1);
      report.info('OTLP export requests received', spans, '', 0);
      report.note(
        'tracing: each side runs in its own child process loaded as the command loads (SDK and pg/http instrumentation first when the endpoint is set); ' +
          'rounds alternate off/on; cycles are 150 ms apart (a monitor runs one per check_interval); the exporter has its default batching. ' +
          'With OTEL_TRACES_SAMPLER=always_off (SDK and instrumentations loaded, nothing recorded) the difference is within noise: the cost is recording the spans.',
      );
    } finally {
      await stopCollector();
    }
  },
};
