/**
 * The durable state the sidecar, the CLI and the library share. An interface
 * free of SQL: the SQLite store is one implementation, an etcd one (several
 * sidecars on several hosts, one failover lease) can be another.
 */

export type FailoverTrigger = 'auto' | 'manual' | 'alert' | 'drill';
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
import type { DrillReport } from '../drill/drill-record.js';

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
  /** A successful switch: what became of the replaced primary and what an operator must do (absent in older records). */
  formerPrimary?: { name: string; demoted: boolean; note: string };
  /** A drill's own entry (trigger drill): what it did and measured; its switchovers are entries of their own. */
  drill?: DrillReport;
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

/** How a process treats a store file moved under it: the sidecar writes it back, the others follow the path. */
export type LocationMode = 'write-back' | 'follow';

export interface CommitSwitchOptions {
  /** Put the replaced primary in the demoted set (default true). */
  demoteFrom?: boolean;
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
  /** Where the store is, as `status` shows it (a file's absolute path). */
  readonly location?: string;
  /**
   * Stores kept in a file: checks that the file at the configured path is still
   * the one open here, and acts by `mode`. Says what it did (for the log);
   * undefined when nothing had changed; throws when it could not.
   */
  checkLocation?(mode: LocationMode): Promise<string | undefined>;
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
   * primary = to, epoch + 1, `from` demoted unless `options.demoteFrom` is false,
   * `to` reinstated. Returns the new state, or undefined when someone else switched first.
   * `demoteFrom` (default true, as before the option existed) is the procedure's
   * decision (failover/former-primary.ts): false after a lossless switchover of an
   * engine that keeps its secondaries up to date; `from` then stays a candidate.
   */
  commitSwitch(
    expectedEpoch: number,
    from: string | undefined,
    to: string,
    trigger: FailoverTrigger,
    at: number,
    options?: CommitSwitchOptions,
  ): Promise<ClusterState | undefined>;
  appendHistory(record: FailoverRecord): Promise<number>;
  /** Newest first. */
  history(limit: number): Promise<FailoverRecord[]>;
  /** How many history entries there are of each trigger and result (for dr_failovers_total, whichever process failed over); drill entries are not failovers and not counted. */
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

  // What several sidecars sharing one cluster state need (issue 12).

  /**
   * Renews a lease `holder` still holds, never takes one afresh: undefined once it
   * expired or went to another holder, even if nobody holds it now (whoever acted
   * in the gap must not be overlapped). `holdLeadership` builds on it.
   */
  renewLease(holder: string, ttlMs: number): Promise<Lease | undefined>;
  /**
   * Calls `onChange` with the cluster state once at the start and again after every
   * change made by any process; `onError` when the watch cannot tell (the store is
   * unreachable), until it can again.
   */
  watch(onChange: (state: ClusterState) => void, onError?: (error: Error) => void): StateWatch;
  /** Publishes this member's view; it disappears `ttlMs` after the last publication. */
  publishMember(name: string, view: MemberView, ttlMs: number): Promise<void>;
  /** Members whose last publication has not expired, by name. */
  members(): Promise<MemberRecord[]>;
  /** Records a change to the cluster for the leader to carry out; returns its id. */
  submitIntent(intent: IntentRequest): Promise<string>;
  /** The oldest intent nobody claimed yet, now claimed by `holder`; undefined when none waits. Two claimers never get the same one. */
  claimIntent(holder: string): Promise<Intent | undefined>;
  /**
   * Stores that stream changes (etcd) call `listener` soon after an intent is recorded or
   * changes, while a `watch` of theirs runs, so the leader need not poll for intents;
   * returns the unsubscribe. Absent: the leader polls.
   */
  onIntentChange?(listener: () => void): () => void;
  /**
   * Stores that stream changes (etcd) tell `listener`, from the stream a `watch` of theirs
   * runs, that the leader key changed (taken, given up, expired), that a member published
   * or went, and `resync` when the stream (re)started and may have missed some; no request
   * of their own. Absent: the HA loop reads the leader key and the members on its clock.
   */
  onMembership?(listener: (change: MembershipChange) => void): () => void;
  /** Records what carrying out a claimed intent gave (once: a second finish is ignored). */
  finishIntent(id: string, outcome: IntentOutcome): Promise<void>;
  /** The intent as it stands (pending, claimed or finished); undefined when unknown or expired. */
  intent(id: string): Promise<Intent | undefined>;
}

export type MembershipChange = { kind: 'leader' } | { kind: 'member'; name: string; record: MemberRecord | undefined } | { kind: 'resync' };

export interface StateWatch {
  stop(): void;
  /**
   * performance.now() (monotonic ms) at which the store last confirmed that the state
   * delivered so far is current: the send time of the latest read that succeeded (a read
   * may have seen the state at any moment until its answer). Undefined before the first.
   * A writer trusts the delivered state only while this is recent (see state/confirmed-state.ts).
   */
  confirmedAt(): number | undefined;
  /**
   * Stores that can do it locally and cheaply (a SQLite file): brings the delivered state
   * up to date now, synchronously, so `onChange` has seen every change committed before the
   * call; throws when the store cannot be read. Absent where it would be a round trip (etcd).
   */
  refresh?(): void;
}

/** What one sidecar sees and says about itself (its probes of each database, its version...): plain JSON. */
export type MemberView = Record<string, unknown>;

export interface MemberRecord {
  name: string;
  view: MemberView;
  /** Epoch ms of the publication. */
  publishedAt: number;
}

export interface IntentRequest {
  /** What to do: "failover", "auto_failover", "reinstate", "backup", ... */
  kind: string;
  params: Record<string, unknown>;
  /** Who asked (member name, "cli@host", ...), for the history and the logs. */
  submittedBy: string;
}

export interface IntentOutcome {
  ok: boolean;
  /** What the submitter is told: the result, or why it was refused or failed. */
  message: string;
  data?: unknown;
}

export interface Intent extends IntentRequest {
  id: string;
  submittedAt: number;
  state: 'pending' | 'claimed' | 'finished';
  claimedBy: string | undefined;
  outcome: IntentOutcome | undefined;
}
