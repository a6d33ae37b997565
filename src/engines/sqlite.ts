import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { DatabaseConfig } from '../config/load.js';
import type { DataSyncOutcome, Engine, Fence, ProbeResult } from './engine.js';
import type { Logger } from '../log.js';
import type { SqliteReplication } from './sqlite/replication.js';
import { copySqliteDatabase, type CopyOutcome } from './sqlite-copy.js';
import type { SqliteIdentities } from './sqlite-identities.js';
import type { SqliteObservation } from './sqlite-identity.js';
import type { SqliteIntegrityChecks } from './sqlite-integrity.js';
import type { SqliteProbePool } from './sqlite-probe-pool.js';

/** What a SQLite engine checks beyond a probe's reads: the file's identity, its pages' integrity. */
export interface SqliteWatch {
  identities?: SqliteIdentities | undefined;
  integrity?: SqliteIntegrityChecks | undefined;
  /** WAL shipping (set once the sidecar's replication exists): a failover's last ship, a promotion back to WAL mode. */
  replication?: Pick<SqliteReplication, 'shipRest' | 'promoting'> | undefined;
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
  readonly replicatedBySidecar = true;
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
  async catchUp(
    source: Engine,
    fence: Fence | undefined,
    timeoutMs: number,
    guard?: () => Promise<string | undefined>,
    options: { rollbackJournal?: boolean } = {},
  ): Promise<DataSyncOutcome> {
    if (!(source instanceof SqliteEngine)) throw new Error(`cannot copy ${source.kind} database ${source.name} into SQLite database ${this.name}`);
    // A secondary that follows the source's WAL only needs what it does not hold yet (a failover, a switchover).
    if (!options.rollbackJournal && !guard) {
      const shipped = await this.watch.replication?.shipRest(source, this, fence !== undefined);
      if (shipped) return shipped;
    }
    const { identities } = this.watch;
    let replacing = false;
    // Asked under this file's write lock, right before the rename: a source that lost its data
    // since the copy was planned (or before it was read) is never put in place of this file.
    const lastWord = async (): Promise<string | undefined> => {
      const problem = await source.sourceProblem();
      if (problem !== undefined) return problem;
      const refused = await guard?.();
      if (refused !== undefined) return refused;
      await identities?.beginReplace(this.name, this.file);
      replacing = true;
      return undefined;
    };
    let copy: CopyOutcome;
    try {
      copy = await copySqliteDatabase(source.file, this.file, { timeoutMs, guard: lastWord, rollbackJournal: options.rollbackJournal ?? false });
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

  /** Why nothing may be copied or shipped from this database now (it lost its data, or is damaged), if so. */
  async sourceProblem(): Promise<string | undefined> {
    const lost = await this.watch.identities?.check(this.name, this.file);
    if (lost !== undefined) return `${this.name} lost its data: ${lost}`;
    // Pages are copied as they are: a file whose quick_check failed would pass its damage on.
    const damaged = this.damage();
    if (damaged !== undefined) return `${this.name} is damaged: ${damaged}`;
    return undefined;
  }

  /**
   * A secondary kept in rollback-journal mode by WAL shipping becomes a primary in WAL mode again,
   * as the primary it replaces was. Readers that hold the file make this wait (bounded); a failure is
   * logged, the file works as it is, and an application that sets journal_mode=WAL converts it itself.
   */
  async restoreWalMode(log: Logger): Promise<void> {
    const deadline = Date.now() + 5000;
    for (;;) {
      let db: Database.Database | undefined;
      try {
        // No busy wait here (the event loop): retried below while readers hold the file.
        db = new Database(this.file, { fileMustExist: true, timeout: 0 });
        if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) {
          log.warn({ database: this.name, err: error }, `disaster-recovery failover: ${this.name} stays in rollback-journal mode: ${(error as Error).message}`);
          return;
        }
      } finally {
        db?.close();
      }
      await new Promise((r) => setTimeout(r, 10));
    }
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
    await this.watch.replication?.promoting(this);
  }

  async follow(): Promise<string> {
    return 'follows by WAL shipping (whole copies for a primary not in WAL mode)';
  }

  async close(): Promise<void> {
    // Nothing held between probes: each opens and closes the file in the pool's worker.
  }
}
