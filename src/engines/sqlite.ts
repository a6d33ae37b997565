import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { DatabaseConfig } from '../config/load.js';
import type { DataSyncOutcome, Engine, Fence, ProbeResult } from './engine.js';
import { copySqliteDatabase, type CopyOutcome } from './sqlite-copy.js';
import type { SqliteIdentities } from './sqlite-identities.js';
import type { SqliteObservation } from './sqlite-identity.js';
import type { SqliteIntegrityChecks } from './sqlite-integrity.js';
import type { SqliteProbePool } from './sqlite-probe-pool.js';

/** What a SQLite engine checks beyond a probe's reads: the file's identity, its pages' integrity. */
export interface SqliteWatch {
  identities?: SqliteIdentities | undefined;
  integrity?: SqliteIntegrityChecks | undefined;
}

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
    private readonly watch: SqliteWatch = {},
  ) {
    if (config.target.engine !== 'sqlite') throw new Error(`${config.name} is not a SQLite database`);
    this.name = config.name;
    this.displayUrl = config.displayUrl;
    this.file = config.target.file;
  }

  /**
   * The pool's probe, then: a file that is not the one watched is lost (down,
   * with why), and a file whose latest quick_check failed is down with SQLite's words.
   */
  probe(timeoutMs: number): Promise<ProbeResult> {
    // No async/await: the store is asked only when memory cannot settle the identity (see Monitor.probe on promises).
    return this.probes.probe(this.file, timeoutMs).then(({ observed, ...result }) => {
      const identities = this.watch.identities;
      if (!observed || !identities) return this.verdict(result, observed, undefined);
      const settled = identities.settled(this.name, this.file, observed, result.up);
      if (settled) return this.verdict(result, observed, settled.why);
      return identities.judge(this.name, this.file, observed, result.up).then((lost) => this.verdict(result, observed, lost));
    });
  }

  private verdict(result: ProbeResult, observed: SqliteObservation | undefined, lost: string | undefined): ProbeResult {
    if (lost !== undefined) return { ...result, up: false, lost, error: `${this.name} lost its data: ${lost} (${this.file})` };
    const damaged = result.up && observed ? this.watch.integrity?.problem(this.file, `${observed.dev}:${observed.ino}`) : undefined;
    return damaged === undefined ? result : { ...result, up: false, damaged, error: damaged };
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
    const { identities } = this.watch;
    let replacing = false;
    // Asked under this file's write lock, right before the rename: a source that lost its data
    // since the copy was planned (or before it was read) is never put in place of this file.
    const lastWord = async (): Promise<string | undefined> => {
      const lost = await identities?.check(source.name, source.file);
      if (lost !== undefined) return `${source.name} lost its data: ${lost}`;
      // The online backup copies pages as they are: a file whose quick_check failed would pass its damage on.
      const damaged = source.damage();
      if (damaged !== undefined) return `${source.name} is damaged: ${damaged}`;
      const refused = await guard?.();
      if (refused !== undefined) return refused;
      await identities?.beginReplace(this.name, this.file);
      replacing = true;
      return undefined;
    };
    let copy: CopyOutcome;
    try {
      copy = await copySqliteDatabase(source.file, this.file, { timeoutMs, guard: lastWord });
    } catch (error) {
      if (replacing) await identities?.cancelReplace(this.name, this.file);
      throw error;
    }
    // The file is the sidecar's own copy now: the new baseline.
    if (replacing) await identities?.rebaseline(this.name, this.file, 'copy');
    return {
      method: 'final-copy',
      complete: fence !== undefined,
      detail: `copied ${copy.bytes} bytes from ${source.name} in ${(copy.seconds * 1000).toFixed(0)} ms${fence ? ' under its write lock' : ''}`,
    };
  }

  /** The latest quick_check complaint about this database's file (as it is now), if any. */
  damage(): string | undefined {
    try {
      const stat = fs.statSync(this.file);
      return this.watch.integrity?.latest(this.file, `${stat.dev}:${stat.ino}`);
    } catch {
      return undefined;
    }
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
