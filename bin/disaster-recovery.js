#!/usr/bin/env node
// The package's command. The TypeScript is compiled by `npm ci` (the prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('error: dr-sidecar is not built: run `npm ci` (or `npm run build`) in its folder first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
await main(process.argv);
