/**
 * The one place the bench builds an in-process service, so a change in how
 * the service is made (constructor, async open, state store) is made here once.
 */
import { parseConfig, type Config } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { DisasterRecoveryService } from '../src/service.js';
import type { BenchContext } from './context.js';

/** Parses `yaml` as the bench's config file and makes a silent service of it; cleanup stops it. */
export async function openService(
  ctx: BenchContext,
  what: string,
  yaml: string,
): Promise<{ config: Config; service: DisasterRecoveryService; stop: () => Promise<void> }> {
  const config = parseConfig(yaml, '/bench/config.yaml');
  // As start-monitoring makes it: the state store at config.state.path (in the run's temp dir) created if new, its state read.
  const service = await DisasterRecoveryService.open(config, silentLogger(), 'create');
  const stop = ctx.cleanup.add(`${what} service`, () => service.stop());
  return { config, service, stop };
}
