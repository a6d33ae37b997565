import type { Config } from '../../src/config/load.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';

/**
 * Creates the config's state store as `start-monitoring` does (only the sidecar
 * creates one; every other command refuses a missing store): for tests that run
 * CLI commands or the library without a sidecar having run first. Returns its path.
 */
export function createStateStore(config: Pick<Config, 'state'>): string {
  new SqliteStateStore(config.state.path, { create: true }).closeNow();
  return config.state.path;
}
