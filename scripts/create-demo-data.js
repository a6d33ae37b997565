#!/usr/bin/env node
// `npm start` runs this first: the example config's SQLite files, created once.
import { loadConfig, resolveConfigPath } from '../dist/src/config/load.js';
import { createDemoData } from '../dist/src/demo-data.js';
import { ConfigError } from '../dist/src/errors.js';

try {
  const config = loadConfig(resolveConfigPath(process.argv[2]));
  for (const file of createDemoData(config)) process.stderr.write(`created ${file} with an empty images table\n`);
} catch (error) {
  process.stderr.write(`error: ${error instanceof ConfigError ? error.message : error}\n`);
  process.exit(2);
}
