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

/** Rounds of one child each side, ABBA order, so a drift in the machine's load touches both sides alike. */
const ROUNDS = 6;

interface ChildCycles {
  /** Wall time of each measured cycle, ms. */
  cycles: number[];
  /** CPU time of the whole process (every thread) during each, ms. */
  cpu: number[];
}

function runChild(ctx: BenchContext, configFile: string, endpoint: string | undefined): Promise<ChildCycles> {
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
      resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildCycles);
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
      const off: ChildCycles = { cycles: [], cpu: [] };
      const on: ChildCycles = { cycles: [], cpu: [] };
      const add = (into: ChildCycles, from: ChildCycles) => {
        into.cycles.push(...from.cycles);
        into.cpu.push(...from.cpu);
      };
      const perRound: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const onFirst = round % 2 === 1;
        const first = await runChild(ctx, configFile, onFirst ? endpoint : undefined);
        const second = await runChild(ctx, configFile, onFirst ? undefined : endpoint);
        const [offRun, onRun] = onFirst ? [second, first] : [first, second];
        add(off, offRun);
        add(on, onRun);
        perRound.push(((median(onRun.cycles) - median(offRun.cycles)) / median(offRun.cycles)) * 100);
      }
      const offMedian = median(off.cycles);
      const onMedian = median(on.cycles);
      report.info(`cycle median, tracing off (${off.cycles.length} cycles)`, offMedian, 'ms');
      report.info(`cycle median, tracing on, OTLP/HTTP to a local collector (${on.cycles.length} cycles)`, onMedian, 'ms');
      report.info('difference of the pooled medians', ((onMedian - offMedian) / offMedian) * 100, '%', 1);
      report.info(`difference per round (${perRound.map((d) => d.toFixed(1)).join(', ')})`, Math.max(...perRound) - Math.min(...perRound), '% spread', 1);
      report.check('difference on vs off, median of the rounds', median(perRound), '%', '<', 5, 1);
      report.info('process CPU per cycle, median, tracing off', median(off.cpu), 'ms');
      report.info('process CPU per cycle, median, tracing on', median(on.cpu), 'ms');
      report.info('OTLP export requests received', spans, '', 0);
      report.note(
        'tracing: each side runs in its own child process loaded as the command loads (SDK and pg/http instrumentation first when the endpoint is set); ' +
          'rounds run off/on, then on/off, and so on, each round compared on its own (the load of the machine drifts between rounds); cycles are 150 ms apart (a monitor runs one per check_interval); each child first runs 25 paced cycles (the exporter sends its first batches, both paths are compiled), then measures 40; spans leave in batches every second (OTEL_BSP_SCHEDULE_DELAY, the default of the sidecar), OTLP over http/protobuf. ' +
          'With OTEL_TRACES_SAMPLER=always_off (SDK and instrumentations loaded, nothing recorded) the difference is within noise: the cost is recording the spans.',
      );
    } finally {
      await stopCollector();
    }
  },
};
