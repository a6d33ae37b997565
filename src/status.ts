import type { RestoreWindow } from './backup/point-in-time.js';
import type { Config, DatabaseConfig } from './config/load.js';
import { replicationWarning } from './engines/sqlite/journal-mode.js';
import { demotedNote } from './failover/former-primary.js';
import type { DatabaseHealth } from './monitor/health.js';
import type { HistorySummary } from './monitor/history.js';
import type { ClusterState, Lease, MemberRecord } from './state/store.js';
import type { OffsiteStatus } from './backup/offsite-status.js';

/** One database as status, the API and the CLI show it: no secret in it. */
export interface DatabaseStatus {
  name: string;
  type: 'primary' | 'secondary';
  priority: number;
  engine: 'sqlite' | 'postgresql';
  url: string;
  enabled: boolean;
  is_primary: boolean;
  /** A former primary, not chosen automatically until reinstated. */
  demoted: boolean;
  /** For a demoted database: what an operator must do before reinstating it; else null. */
  demoted_note: string | null;
  status: 'unknown' | 'up' | 'down' | 'disabled';
  response_time_seconds: number | null;
  size_bytes: number | null;
  connections: number | null;
  in_recovery: boolean | null;
  /** A new session of it is read-only by default (a fence): it refuses writes. */
  read_only: boolean | null;
  replication_lag_seconds: number | null;
  /** For a SQLite primary whose secondaries cannot follow its WAL: why, and the PRAGMA that fixes it; else null. */
  replication_warning: string | null;
  consecutive_failures: number;
  error_count: number;
  error: string | null;
  last_error: string | null;
  checked_at: string | null;
  history: ProbeHistoryStatus | null;
}

/** The probes of the last `history_retention_hours`, summed up. */
export interface ProbeHistoryStatus {
  samples: number;
  since: string | null;
  /** Share of probes that found it up, 0..1. */
  availability: number | null;
  average_response_seconds: number | null;
  max_response_seconds: number | null;
}

export interface AutoFailoverStatus {
  enabled: boolean;
  /** Who decided: the config file, or an operator's enable-/disable-auto-failover. */
  source: 'config' | 'operator';
  /** Why a dead primary is not being replaced right now, if it is not. */
  held: string | null;
}

/** The cluster state this report was read from. */
export interface StateStoreStatus {
  /** The store's absolute path (every process acting on the cluster must use this one). */
  path: string;
  /** Set by a running sidecar whose state file was lost and not written back yet. */
  problem: string | null;
}

export interface StatusReport {
  enabled: boolean;
  config: string;
  state_store: StateStoreStatus;
  primary: string | null;
  epoch: number;
  auto_failover: AutoFailoverStatus;
  last_backup: LastBackupStatus | null;
  databases: DatabaseStatus[];
  /** The sidecars sharing the cluster state: who leads, the lease, each member's last heartbeat and view. */
  cluster: ClusterStatus;
  /** Per `backup.offsite` destination: what arrived last, what is pending, the last error. */
  offsite: OffsiteStatus[];
  /** What `restore --to-time` can restore into, per archived database (backup.archive). */
  restore_windows?: RestoreWindowStatus[];
}

export interface RestoreWindowStatus {
  database: string;
  engine: 'sqlite' | 'postgresql';
  ranges: Array<{ from: string; to: string }>;
  gaps: Array<{ from: string; to: string; reason: string }>;
}

export function restoreWindowStatus(w: RestoreWindow): RestoreWindowStatus {
  return {
    database: w.database,
    engine: w.engine,
    ranges: w.ranges.map((r) => ({ from: r.from.toISOString(), to: r.to.toISOString() })),
    gaps: w.gaps.map((g) => ({ from: g.from.toISOString(), to: g.to.toISOString(), reason: g.reason })),
  };
}

export interface ClusterStatus {
  backend: 'sqlite' | 'etcd';
  /** This sidecar's name (null for a command, which is no member). */
  member: string | null;
  is_leader: boolean;
  /** The lease holder's member name (its holder without the process suffix), or null when nobody leads. */
  leader: string | null;
  lease: { holder: string; expires_at: string; ttl_seconds: number } | null;
  members: Array<{ name: string; last_heartbeat: string; view: Record<string, unknown> }>;
  /** Why this sidecar cannot reach the state store (it then answers /primary with 503 and does not act). */
  cut_off: string | null;
}

export function clusterStatus(c: {
  backend: 'sqlite' | 'etcd';
  member: string | null;
  isLeader: boolean;
  lease: ClusterStatus['lease'];
  members: ClusterStatus['members'];
  cutOff: string | null;
}): ClusterStatus {
  // A holder is "<member>/<pid>.<n>" (a sidecar) or "command@host:pid:kind" (a command acting alone).
  const leader = c.lease ? c.lease.holder.replace(/\/\d+\.\d+$/, '') : null;
  return { backend: c.backend, member: c.member, is_leader: c.isLeader, leader, lease: c.lease, members: c.members, cut_off: c.cutOff };
}

/** The newest good backup of any enabled database. */
export interface LastBackupStatus {
  database: string;
  path: string;
  name: string;
  trigger: string;
  created_at: string;
  finished_at: string;
  size_bytes: number;
  sha256: string;
  /** The last `verify` of it: true, false, or null when never verified. */
  verified: boolean | null;
}

export function lastBackupStatus(backup: Omit<LastBackupStatus, 'verified'> & { verification?: { ok: boolean } }): LastBackupStatus {
  const status: LastBackupStatus = {
    database: backup.database,
    path: backup.path,
    name: backup.name,
    trigger: backup.trigger,
    created_at: backup.created_at,
    finished_at: backup.finished_at,
    size_bytes: backup.size_bytes,
    sha256: backup.sha256,
    verified: backup.verification?.ok ?? null,
  };
  return status;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function databaseStatus(
  db: DatabaseConfig,
  health: DatabaseHealth | undefined,
  history: HistorySummary | undefined,
  primary: string | undefined,
  extra: { demoted: boolean; demotedNote?: string | undefined; copyLagSeconds: number | undefined; replicationWarning?: string | undefined },
): DatabaseStatus {
  const last = health?.last;
  return {
    name: db.name,
    type: db.type,
    priority: db.priority,
    engine: db.target.engine,
    url: db.displayUrl,
    enabled: db.enabled,
    is_primary: db.name === primary,
    demoted: extra.demoted,
    demoted_note: extra.demoted ? (extra.demotedNote ?? null) : null,
    status: !db.enabled ? 'disabled' : (health?.status ?? 'unknown'),
    response_time_seconds: last?.responseTimeSeconds ?? null,
    size_bytes: last?.sizeBytes ?? null,
    connections: last?.connections ?? null,
    in_recovery: last?.inRecovery ?? null,
    read_only: last?.up ? (last.readOnly ?? null) : null,
    replication_lag_seconds: db.name === primary ? null : (last?.replicationLagSeconds ?? extra.copyLagSeconds ?? null),
    replication_warning: extra.replicationWarning ?? null,
    consecutive_failures: health?.consecutiveFailures ?? 0,
    error_count: health?.errorCount ?? 0,
    error: last?.up === false ? (last.error ?? 'down') : null,
    last_error: health?.lastError ?? null,
    checked_at: iso(last?.checkedAt),
    history: history ? probeHistoryStatus(history) : null,
  };
}

function probeHistoryStatus(h: HistorySummary): ProbeHistoryStatus {
  return {
    samples: h.samples,
    since: iso(h.since),
    availability: h.availability ?? null,
    average_response_seconds: h.averageResponseSeconds ?? null,
    max_response_seconds: h.maxResponseSeconds ?? null,
  };
}

export function statusReport(
  config: Config,
  databases: DatabaseStatus[],
  state: ClusterState,
  autoFailover: AutoFailoverStatus,
  lastBackup: LastBackupStatus | null = null,
  stateStore: StateStoreStatus = { path: config.state.path, problem: null },
  cluster: ClusterStatus = clusterStatus({ backend: config.state.backend, member: null, isLeader: false, lease: null, members: [], cutOff: null }),
  offsite: OffsiteStatus[] = [],
): StatusReport {
  return {
    enabled: config.enabled,
    config: config.file,
    state_store: stateStore,
    primary: databases.find((d) => d.is_primary)?.name ?? null,
    epoch: state.epoch,
    auto_failover: autoFailover,
    last_backup: lastBackup,
    databases,
    cluster,
    offsite,
  };
}

/** What a process knows of each database: its probes' health and history, and its copies' lag. */
export interface ProbeSources {
  health(name: string): DatabaseHealth | undefined;
  history(name: string): { summary(): HistorySummary } | undefined;
  copyLagSeconds(name: string): number | undefined;
}

/** Every configured database as status shows it, the current primary marked. */
export function databaseStatuses(config: Config, state: ClusterState, primary: string | undefined, probes: ProbeSources): DatabaseStatus[] {
  return config.topology.all().map((db) =>
    databaseStatus(db, probes.health(db.name), probes.history(db.name)?.summary(), primary, {
      demoted: state.demoted.includes(db.name),
      demotedNote: demotedNote(db.name, db.target.engine, primary),
      copyLagSeconds: probes.copyLagSeconds(db.name),
      replicationWarning: db.name === primary ? replicationWarning(db, config.databases) : undefined,
    }),
  );
}

/** Why a primary that is down right now is not being replaced (for a process that does not decide it). */
export function downPrimaryHold(c: { primary: string | undefined; health: DatabaseHealth | undefined; autoFailover: boolean; follower: boolean; leader: () => string | null }): string | null {
  if (!c.primary || c.health?.status !== 'down') return null;
  if (!c.autoFailover) return `primary ${c.primary} is down and automatic failover is disabled`;
  if (c.follower) return `primary ${c.primary} is down; this sidecar follows: the leader (${c.leader() ?? 'none yet'}) decides`;
  return null;
}

/** The lease as status shows it. */
export function leaseStatus(lease: Lease | undefined, ttlSeconds: number): ClusterStatus['lease'] {
  return lease ? { holder: lease.holder, expires_at: new Date(lease.expiresAt).toISOString(), ttl_seconds: ttlSeconds } : null;
}

/** The members as status shows them (a stopped sidecar's last word is no member). */
export function memberStatuses(members: readonly MemberRecord[]): ClusterStatus['members'] {
  return members.filter((m) => m.view.stopped !== true).map((m) => ({ name: m.name, last_heartbeat: new Date(m.publishedAt).toISOString(), view: m.view }));
}
