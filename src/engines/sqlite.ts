import Database from 'better-sqlite3';
import type { DatabaseConfig } from '../config/load.js';
import type { DataSyncOutcome, Engine, Fence, ProbeResult } from './engine.js';
import { copySqliteDatabase } from './sqlite-copy.js';
import type { SqliteProbePool } from './sqlite-probe-pool.js';

/** Holds the database's write lock: writers wait, or fail with SQLITE_BUSY. */
export class SqliteFence implements Fence {
  constructor(readonly connection: Database.Database) {}

  async release(): Promise<void> {
    this.end();
  }

  // A SQLite file cannot stay locked once the sidecar lets go; writers are kept off the
  // demoted primary by the epoch check every session makes (see manager.ts).
  async keep(): Promise<void> {
    this.end();
  }

  private end(): void {
    if (!this.connection.open) return;
    if (this.connection.inTransaction) this.connection.exec('ROLLBACK');
    this.connection.close();
  }
}

export class SqliteEngine implements Engine {
  readonly kind = 'sqlite' as const;
  readonly copiesPeriodically = true;
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

  /** Takes the write lock (BEGIN IMMEDIATE), retrying off the event loop while a writer holds it. */
  async fence(timeoutMs: number): Promise<SqliteFence> {
    const db = new Database(this.file, { fileMustExist: true, timeout: 0 });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        db.exec('BEGIN IMMEDIATE');
        return new SqliteFence(db);
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) {
          db.close();
          throw new Error(`cannot take the write lock of ${this.file}: ${(error as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  /**
   * Copies the source over this file. With the source's fence holding its write
   * lock, the copy (read through a connection of its own) has every commit.
   */
  async catchUp(source: Engine, fence: Fence | undefined, timeoutMs: number, guard?: () => Promise<string | undefined>): Promise<DataSyncOutcome> {
    if (!(source instanceof SqliteEngine)) throw new Error(`cannot copy ${source.kind} database ${source.name} into SQLite database ${this.name}`);
    const copy = await copySqliteDatabase(source.file, this.file, { timeoutMs, ...(guard ? { guard } : {}) });
    return {
      method: 'final-copy',
      complete: fence !== undefined,
      detail: `copied ${copy.bytes} bytes from ${source.name} in ${(copy.seconds * 1000).toFixed(0)} ms${fence ? ' under its write lock' : ''}`,
    };
  }

  async promote(): Promise<void> {
    // A SQLite file takes writes as it is; routing is what makes it the primary.
  }

  async follow(): Promise<string> {
    return 'kept warm by periodic copies';
  }

  async close(): Promise<void> {
    // Nothing held between probes: each opens and closes the file in the pool's worker.
  }
}
