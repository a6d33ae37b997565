/**
 * Child of the tracing section: loads OpenTelemetry exactly as the command does
 * (before anything else, only when OTEL_EXPORTER_OTLP_ENDPOINT is set), then
 * times probe cycles over the config in argv[2] and prints them as JSON.
 */
import { register } from 'node:module';
import { performance } from 'node:perf_hooks';
import { tracingRequested } from '../src/telemetry/requested.js';

const CYCLES = Number(process.env.BENCH_TRACING_CYCLES ?? 40);
/** Cycles are paced as a monitor paces them (here far faster than any check_interval), so the batch exporter works between cycles, as it would. */
const PAUSE_MS = 150;

async function main(): Promise<void> {
  let shutdown: (() => Promise<void>) | undefined;
  if (tracingRequested()) {
    register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
    const { startTelemetry } = await import('../src/telemetry/sdk.js');
    shutdown = startTelemetry('bench').shutdown;
  }
  const { loadConfig } = await import('../src/config/load.js');
  const { silentLogger } = await import('../src/log.js');
  const { DisasterRecoveryService } = await import('../src/service.js');
  const service = await DisasterRecoveryService.open(loadConfig(process.argv[2]!), silentLogger());
  try {
    for (let i = 0; i < 5; i++) await service.monitor.probeAll();
    const cycles: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const started = performance.now();
      await service.monitor.probeAll();
      cycles.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, PAUSE_MS));
    }
    process.stdout.write(`${JSON.stringify({ cycles, traced: shutdown !== undefined })}\n`);
  } finally {
    await service.stop();
    await shutdown?.();
  }
}

await main();
