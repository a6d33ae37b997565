import type { Engine } from '../engines/engine.js';
import type { Logger } from '../log.js';

/** A demoted PostgreSQL primary that comes back writable is made read-only again before anyone writes to it. */
export async function fenceResurrected(name: string, engine: Engine, timeoutMs: number, log: Logger): Promise<void> {
  try {
    const fence = await engine.fence(timeoutMs);
    await fence.keep();
    log.warn({ database: name }, `disaster-recovery failover: former primary ${name} came back writable and was fenced (read-only)`);
  } catch (error) {
    log.error({ database: name, err: error }, `disaster-recovery failover: could not fence the returning former primary ${name}`);
  }
}
