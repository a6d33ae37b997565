/** What one probe of a database found. */
export interface ProbeResult {
  up: boolean;
  /** Epoch milliseconds when the probe finished. */
  checkedAt: number;
  /** Wall time of the probe: until the answer, the error, or the timeout. */
  responseTimeSeconds: number;
  sizeBytes?: number;
  /** Sessions connected to this database (PostgreSQL). */
  connections?: number;
  /** What the server itself says it is (PostgreSQL: pg_is_in_recovery()). */
  inRecovery?: boolean;
  /**
   * A new session of this database is read-only by default (PostgreSQL:
   * default_transaction_read_only, as a fence sets it): it refuses writes.
   */
  readOnly?: boolean;
  /** Seconds the standby's replay is behind (PostgreSQL standby). */
  replicationLagSeconds?: number;
  /**
   * PostgreSQL: the WAL position this server holds: a primary's current write
   * position, a standby's last received (or replayed, if further) position.
   */
  walPosition?: string;
  /** Why it is down, in words; never holds a secret. */
  error?: string;
  /**
   * SQLite: why the file at the database's path no longer holds the data the
   * sidecar watched (replaced, emptied, truncated behind its back). Such a
   * database is down, and nothing is ever copied from it.
   */
  lost?: string;
  /** SQLite: what the latest integrity check (quick_check) found wrong; nothing is copied from such a file either. */
  damaged?: string;
}

export type EngineKind = 'sqlite' | 'postgresql';

/** How a database was brought up to date before it became the primary. */
export interface DataSyncOutcome {
  method: 'streaming' | 'final-copy' | 'wal-shipping' | 'dump-restore' | 'periodic-copy' | 'none';
  /** True when the target is known to hold everything the old primary acknowledged. */
  complete: boolean;
  detail: string;
  /** How far behind the target's data is when it could not be brought up to date. */
  lagSeconds?: number;
}

/** Writes can no longer reach the fenced database (the primary being replaced). */
export interface Fence {
  /** The switch did not happen: let writes reach the database again. */
  release(): Promise<void>;
  /** The switch happened: leave the database fenced as a demoted primary, free what the sidecar holds. */
  keep(): Promise<void>;
}

/** One database, as the sidecar reaches it. Adapters: engines/sqlite.ts, engines/postgres.ts. */
export interface Engine {
  readonly name: string;
  readonly kind: EngineKind;
  /** Connection URL with the password masked. */
  readonly displayUrl: string;
  /** Never rejects: a failure is a result with `up: false`; bounded by `timeoutMs`. */
  probe(timeoutMs: number): Promise<ProbeResult>;
  /** Releases connections, pools and workers. */
  close(): Promise<void>;

  /** Stops writes reaching this database, waiting up to `timeoutMs` for writes under way. */
  fence(timeoutMs: number): Promise<Fence>;
  /**
   * Brings this database up to date from `source` (same engine). With the
   * source's fence, the result holds every write the source acknowledged;
   * throws when that cannot be done within `timeoutMs`. `guard` (periodic
   * copies) is asked right before this database's data is replaced: a reason
   * calls the copy off (CopyCancelled) and leaves this database as it was.
   */
  catchUp(source: Engine, fence: Fence | undefined, timeoutMs: number, guard?: () => Promise<string | undefined>): Promise<DataSyncOutcome>;
  /**
   * Throws (ConflictError, saying what is missing) when this process could not make this
   * database the primary, e.g. its PostgreSQL role lacks a privilege; asked before anything changes.
   */
  checkPromotable?(timeoutMs: number): Promise<void>;
  /** Makes this database accept writes (PostgreSQL: pg_promote on a standby, lift a fence). */
  promote(timeoutMs: number): Promise<void>;
  /**
   * How far behind `source` (the primary being replaced) this database is, as far as this process
   * can tell without reaching the source, given this database's latest `probe`; undefined when it
   * cannot tell (then the probe's replication lag stands). PostgreSQL: a standby holding all the WAL
   * the source had at its last successful probe misses at most what the source wrote between that
   * probe and the first failing one, however long ago its last transaction was (an idle primary).
   */
  lagBehind?(source: Engine, probe: ProbeResult): number | undefined;
  /** Points this standby at the new primary (PostgreSQL streaming); nothing for SQLite. */
  follow(primary: Engine): Promise<string>;
  /**
   * True when the sidecar itself keeps secondaries of this engine up to date (SQLite: the
   * replication in engines/sqlite/ ships WAL, or whole copies); false when the database
   * server does (PostgreSQL streaming). How it is done is the engine's business.
   */
  readonly replicatedBySidecar: boolean;
}

export function downResult(startedAt: number, error: string): ProbeResult {
  const now = performance.now();
  return { up: false, checkedAt: Date.now(), responseTimeSeconds: (now - startedAt) / 1000, error };
}
