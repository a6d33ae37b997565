/**
 * Child of the tracing section: loads OpenTelemetry exactly as the command does
 * (before anything else, only when OTEL_EXPORTER_OTLP_ENDPOINT is set), then
 * times probe cycles over the config in argv[2] and prints them as JSON.
 */
import { register } from 'node:module';
import { performance } from 'node:perf_hooks';
import { tracingRequested } from '../src/telemetry/requested.js';

const CYCLES = Number(process.env.BENCH_TRACING_CYCLES ?? 40);
/**
 * Paced cycles before the measured ones: long enough for the exporter's first
 * batches (512 spans each) to be sent and the code on both paths compiled, so
 * the figures are the steady state of a sidecar that runs for days.
 */
const WARMUP_CYCLES = 25;
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
  // The bench's own run folder: its state store is made here, as start-monitoring would.
  const service = await DisasterRecoveryService.open(loadConfig(process.argv[2]!), silentLogger(), 'create');
  try {
    const cycles: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < WARMUP_CYCLES + CYCLES; i++) {
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      await service.monitor.probeAll();
      const elapsed = performance.now() - started;
      const used = process.cpuUsage(cpuBefore);
      if (i >= WARMUP_CYCLES) {
        cycles.push(elapsed);
        cpu.push((used.user + used.system) / 1000);
      }
      await new Promise((r) => setTimeout(r, PAUSE_MS));
    }
    process.stdout.write(`${JSON.stringify({ cycles, cpu, traced: shutdown !== undefined })}\n`);
  } finally {
    await service.stop();
    await shutdown?.();
  }
}

await main();
