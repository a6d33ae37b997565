/**
 * The durable state the sidecar, the CLI and the library share. An interface
 * free of SQL: the SQLite store is one implementation, an etcd one (several
 * sidecars on several hosts, one failover lease) can be another.
 */

export type FailoverTrigger = 'auto' | 'manual' | 'alert';
export type FailoverResult = 'success' | 'failed' | 'no_candidate' | 'refused';

export interface ClusterState {
  /** The primary recorded by the last failover; undefined: the config's primary. */
  primary: string | undefined;
  /** Grows by one with every completed failover; a fencing token for writers. */
  epoch: number;
  /** Set by enable-/disable-auto-failover; undefined: the config's value. */
  autoFailover: boolean | undefined;
  /** Former primaries, never chosen automatically until an operator reinstates them. */
  demoted: string[];
  /** Epoch ms of the last automatic failover (for the cooldown). */
  lastAutoFailoverAt: number | undefined;
}

export type { DataSyncOutcome } from '../engines/engine.js';
import type { DataSyncOutcome } from '../engines/engine.js';
import type { SqliteIdentity } from '../engines/sqlite-identity.js';

export interface FailoverRecord {
  id?: number;
  epoch: number | null;
  startedAt: string;
  finishedAt: string;
  from: string | null;
  to: string | null;
  trigger: FailoverTrigger;
  reason: string;
  result: FailoverResult;
  error: string | null;
  dataSync: DataSyncOutcome | null;
  /** Milliseconds of each phase: detect, choose, sync, switch. */
  phases: Partial<Record<'detect' | 'choose' | 'sync' | 'switch', number>>;
}

export interface Lease {
  holder: string;
  expiresAt: number;
}

/** One alert delivery as the webhook receiver recorded it. */
export interface AlertRecord {
  /** fingerprint@startsAt:status: the same alert delivered again has the same key. */
  key: string;
  receivedAt: string;
  alertname: string;
  database: string | null;
  status: 'firing' | 'resolved';
  action: string;
  outcome: string;
  why: string;
  /** What executing the action gave, filled in afterwards. */
  result: string | null;
}

/**
 * The identity of one SQLite database's file as the sidecar last accepted it
 * (engines/sqlite-identity.ts): kept in the shared state so a restarted
 * sidecar, and every CLI process, judge the file against the same baseline.
 */
export interface SqliteIdentityRecord {
  database: string;
  /** The resolved path the identity belongs to (a config that moves the file starts afresh). */
  file: string;
  identity: SqliteIdentity;
  /** Epoch ms of the observation the identity was taken from. */
  since: number;
  /** Epoch ms of the last re-baseline (first sight, copy, restore, operator): a newer one always wins. */
  generation: number;
  /** What set the baseline: 'first-seen', 'copy', 'restore', 'accepted', 'observed'. */
  source: string;
  /** The sidecar itself is replacing the file (a copy, a restore) until then: nothing is judged. */
  replacingUntil?: number;
}

export interface StateStore {
  read(): Promise<ClusterState>;
  setAutoFailover(enabled: boolean): Promise<void>;
  reinstate(name: string): Promise<void>;
  /**
   * Takes the failover lease for `ttlMs`, or renews it for the same holder.
   * Returns undefined when another holder has it; `holder()` says who.
   */
  acquireLease(holder: string, ttlMs: number): Promise<Lease | undefined>;
  leaseHolder(): Promise<Lease | undefined>;
  releaseLease(holder: string): Promise<void>;
  /**
   * Records the switch atomically, only if the epoch is still `expectedEpoch`:
   * primary = to, epoch + 1, `from` demoted, `to` reinstated. Returns the new state,
   * or undefined when someone else switched first.
   */
  commitSwitch(expectedEpoch: number, from: string | undefined, to: string, trigger: FailoverTrigger, at: number): Promise<ClusterState | undefined>;
  appendHistory(record: FailoverRecord): Promise<number>;
  /** Newest first. */
  history(limit: number): Promise<FailoverRecord[]>;
  /** How many history entries there are of each trigger and result (for dr_failovers_total, whichever process failed over). */
  historyCounts(): Promise<Array<{ trigger: FailoverTrigger; result: FailoverResult; count: number }>>;
  /** Records an alert delivery once: false when its key was recorded before (a duplicate delivery). */
  recordAlert(record: AlertRecord): Promise<boolean>;
  finishAlert(key: string, result: string): Promise<void>;
  /** Newest first. */
  alerts(limit: number): Promise<AlertRecord[]>;
  /** Every SQLite identity recorded. */
  sqliteIdentities(): Promise<SqliteIdentityRecord[]>;
  /** Writes `record` unless the store holds one of a newer generation for the same database. */
  recordSqliteIdentity(record: SqliteIdentityRecord): Promise<void>;
  close(): Promise<void>;
}
