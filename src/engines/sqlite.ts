import type { DatabaseConfig } from '../config/load.js';
import type { Engine, ProbeResult } from './engine.js';
import type { SqliteProbePool } from './sqlite-probe-pool.js';

export class SqliteEngine implements Engine {
  readonly kind = 'sqlite' as const;
  readonly name: string;
  readonly displayUrl: string;
  readonly file: string;

  constructor(
    config: DatabaseConfig,
    private readonly probes: SqliteProbePool,
  ) {
    if (config.target.engine !== 'sqlite') throw new Error(`${config.name} is not a SQLite database`);
    this.name = config.name;
    this.displayUrl = config.displayUrl;
    this.file = config.target.file;
  }

  probe(timeoutMs: number): Promise<ProbeResult> {
    return this.probes.probe(this.file, timeoutMs);
  }

  async close(): Promise<void> {
    // Nothing held between probes: each opens and closes the file in the pool's worker.
  }
}
