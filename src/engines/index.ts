import type { DatabaseConfig } from '../config/load.js';
import type { Engine } from './engine.js';
import { PostgresEngine } from './postgres.js';
import { SqliteEngine, type SqliteWatch } from './sqlite.js';
import { SqliteProbePool } from './sqlite-probe-pool.js';

export type { Engine, EngineKind, ProbeResult } from './engine.js';

/** The engines of a set of databases, sharing one SQLite probe pool; `close()` releases everything. */
export class Engines {
  readonly byName = new Map<string, Engine>();
  private sqliteProbes: SqliteProbePool | undefined;

  constructor(
    databases: DatabaseConfig[],
    scrub: (text: string) => string,
    private readonly sqliteWatch: SqliteWatch = {},
  ) {
    for (const db of databases) {
      if (db.target.engine === 'sqlite') {
        this.sqliteProbes ??= new SqliteProbePool(2);
        this.byName.set(db.name, new SqliteEngine(db, this.sqliteProbes, sqliteWatch));
      } else {
        this.byName.set(db.name, new PostgresEngine(db, scrub));
      }
    }
  }

  get(name: string): Engine | undefined {
    return this.byName.get(name);
  }

  all(): Engine[] {
    return [...this.byName.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((e) => e.close()));
    await this.sqliteProbes?.close();
    await this.sqliteWatch.integrity?.close();
  }
}
