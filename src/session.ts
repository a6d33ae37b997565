import fs from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseConfig } from './config/load.js';

/** What `withSession` hands the application: a transaction on the current primary. */
export type Session =
  | { engine: 'postgresql'; database: string; epoch: number; client: pg.PoolClient }
  | { engine: 'sqlite'; database: string; epoch: number; db: Database.Database };

/** The primary can no longer be written through this connection: wait for a failover and run again. */
export class PrimaryLost extends Error {}

const PG_LOST_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '25006', '08000', '08003', '08006', '08001', '08004']);
const SQLITE_LOST = /^(SQLITE_CORRUPT|SQLITE_NOTADB|SQLITE_CANTOPEN|SQLITE_IOERR|SQLITE_READONLY)/;

/** Errors that mean "this database is gone or fenced", as opposed to a mistake in the application's SQL. */
export function isPrimaryLost(error: unknown): boolean {
  if (error instanceof PrimaryLost) return true;
  const e = error as { code?: string; message?: string };
  if (e.code && (PG_LOST_CODES.has(e.code) || SQLITE_LOST.test(e.code) || e.code === 'ENOENT')) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(e.message ?? '');
}

/** Whether the database is still the primary of the session's epoch; throws when that cannot be confirmed. */
export type StillPrimary = () => boolean | Promise<boolean>;

/** A connection to one database for application sessions. */
export interface SessionTarget {
  /**
   * Whether the engine's fence of a replaced primary stays after the switch is recorded
   * (PostgreSQL: read-only), or ends with it (SQLite: the write lock is released).
   */
  readonly fenceOutlastsSwitch: boolean;
  run<T>(epoch: number, fn: (session: Session) => Promise<T> | T, stillPrimary: StillPrimary): Promise<T>;
  close(): Promise<void>;
}

export class PostgresSessions implements SessionTarget {
  readonly fenceOutlastsSwitch = true;
  private readonly pool: pg.Pool;

  constructor(
    private readonly db: DatabaseConfig,
    max: number,
  ) {
    if (db.target.engine !== 'postgresql') throw new Error(`${db.name} is not PostgreSQL`);
    this.pool = new pg.Pool({ connectionString: db.target.connectionString, max, connectionTimeoutMillis: 5000, application_name: 'dr-sidecar-app' });
    this.pool.on('error', () => undefined);
  }

  async run<T>(epoch: number, fn: (session: Session) => Promise<T> | T, stillPrimary: StillPrimary): Promise<T> {
    if (!(await stillPrimary())) throw new PrimaryLost(`${this.db.name} is no longer the primary`);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // pg-pool stops listening to a client once it is checked out: a connection that dies between two
    // statements (the primary killed) would emit 'error' with no listener and crash the application.
    let lost: Error | undefined;
    const onError = (error: Error) => {
      lost ??= error;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await fn({ engine: 'postgresql', database: this.db.name, epoch, client });
      // The primary may have been replaced while `fn` ran (it hung, a failover happened, it came
      // back): a transaction begun on it must not commit there now. Checked again just before COMMIT.
      if (!(await stillPrimary())) throw new PrimaryLost(`${this.db.name} stopped being the primary during the transaction`);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      broken = error as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.removeListener('error', onError);
      // A connection that failed mid-transaction is dropped, not returned to the pool.
      const discard = broken && isPrimaryLost(broken) ? broken : lost;
      // A dropped connection may still hear the server end it (a fence terminating the old primary's
      // sessions, moments after the check before COMMIT turned it away): nobody listens to it any more.
      if (discard) client.on('error', () => undefined);
      client.release(discard);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export class SqliteSessions implements SessionTarget {
  readonly fenceOutlastsSwitch = false;
  private connection: Database.Database | undefined;
  private inode: number | undefined;
  private readonly file: string;

  constructor(
    private readonly db: DatabaseConfig,
    private readonly busyTimeoutMs: number,
  ) {
    if (db.target.engine !== 'sqlite') throw new Error(`${db.name} is not SQLite`);
    this.file = db.target.file;
  }

  /**
   * BEGIN IMMEDIATE, then the epoch check: a switchover holds the write lock of
   * the old primary until the switch is recorded, so a writer that gets the lock
   * afterwards sees the new epoch and moves on instead of writing to the old file.
   */
  async run<T>(epoch: number, fn: (session: Session) => Promise<T> | T, stillPrimary: StillPrimary): Promise<T> {
    const db = this.open();
    await this.begin(db);
    try {
      if (!(await stillPrimary())) throw new PrimaryLost(`${this.db.name} is no longer the primary`);
      const result = await fn({ engine: 'sqlite', database: this.db.name, epoch, db });
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      if (isPrimaryLost(error)) this.drop();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.drop();
  }

  /** The cached connection, unless the file was removed or replaced under it. */
  private open(): Database.Database {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.file);
    } catch {
      this.drop();
      throw new PrimaryLost(`database file not found: ${this.file}`);
    }
    if (this.connection && this.inode === stat.ino) return this.connection;
    this.drop();
    this.connection = new Database(this.file, { fileMustExist: true, timeout: 0 });
    this.inode = stat.ino;
    return this.connection;
  }

  private async begin(db: Database.Database): Promise<void> {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        db.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error;
        // Waits off the event loop (better-sqlite3's own busy timeout would block it).
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }

  private drop(): void {
    if (this.connection?.open) this.connection.close();
    this.connection = undefined;
    this.inode = undefined;
  }
}
