#!/usr/bin/env -S node --max-semi-space-size=2
// The package's command. The TypeScript is compiled by `npm ci` (the prepare script).
import { existsSync, readFileSync } from 'node:fs';

const dist = new URL('../dist/src/', import.meta.url);
if (!existsSync(new URL('cli/main.js', dist))) {
  process.stderr.write('error: dr-sidecar is not built: run `npm ci` (or `npm run build`) in its folder first\n');
  process.exit(2);
}

// OpenTelemetry starts before the rest of the program loads, so pg, http and express
// are instrumented; without an OTLP endpoint none of it is even loaded.
const { tracingRequested } = await import(new URL('telemetry/requested.js', dist).href);
if (tracingRequested()) {
  const { register } = await import('node:module');
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const { startTelemetry } = await import(new URL('telemetry/sdk.js', dist).href);
  const { onShutdown } = await import(new URL('cli/lifecycle.js', dist).href);
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const telemetry = startTelemetry(version);
  onShutdown(() => telemetry.shutdown());
}

const { main } = await import(new URL('cli/main.js', dist).href);
await main(process.argv);
// Pools and workers are closed by then; exit now rather than wait on a stray handle.
process.exit(process.exitCode ?? 0);
