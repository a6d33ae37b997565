import type { Command } from 'commander';
import { loadConfig, resolveConfigPath, type Config } from '../config/load.js';
import { createLogger, type Logger } from '../log.js';
import { DisasterRecoveryService, Inspection } from '../sidecar.js';
import { openStateStore, type StoreOpening } from '../state/open-store.js';
import type { StateStore } from '../state/store.js';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

/** Options of a command merged with the program's (`--config` works before or after the command). */
export function optionsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export function loadCommandConfig(command: Command): Config {
  return loadConfig(resolveConfigPath(optionsOf(command).config));
}

/** Short commands log errors only, to stderr: what they found is in their output already. */
export function commandLogger(config: Config): Logger {
  return createLogger({
    level: config.logging.level === 'debug' || config.logging.level === 'trace' ? config.logging.level : 'error',
    secrets: config.secrets,
    destination: process.stderr,
    file: config.logging.file,
  });
}

/**
 * Runs `fn` with a whole sidecar (not started) and always releases it: for commands that change the cluster. The state store must exist
 * (only start-monitoring creates it); commands that only look pass `if-present`.
 */
export async function withService<T>(
  config: Config,
  log: Logger,
  fn: (service: DisasterRecoveryService) => Promise<T>,
  opening: StoreOpening = 'require',
): Promise<T> {
  const service = await DisasterRecoveryService.open(config, log, opening);
  try {
    return await fn(service);
  } finally {
    await service.stop();
  }
}

/** For a command that only looks (status, test): the state, probes and catalogue, without the sidecar's machinery. */
export async function withInspection<T>(config: Config, log: Logger, fn: (inspection: Inspection) => Promise<T>, opening: StoreOpening = 'require'): Promise<T> {
  const inspection = await Inspection.open(config, log, opening);
  try {
    return await fn(inspection);
  } finally {
    await inspection.close();
  }
}

/** For a command that reads one table of the state store (history). */
export async function withStore<T>(config: Config, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const store = openStateStore(config.state, 'require');
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
