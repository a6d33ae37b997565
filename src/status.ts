import type { Config, DatabaseConfig } from './config/load.js';
import type { DatabaseHealth } from './monitor/health.js';
import type { HistorySummary } from './monitor/history.js';

/** One database as status, the API and the CLI show it: no secret in it. */
export interface DatabaseStatus {
  name: string;
  type: 'primary' | 'secondary';
  priority: number;
  engine: 'sqlite' | 'postgresql';
  url: string;
  enabled: boolean;
  is_primary: boolean;
  status: 'unknown' | 'up' | 'down' | 'disabled';
  response_time_seconds: number | null;
  size_bytes: number | null;
  connections: number | null;
  in_recovery: boolean | null;
  replication_lag_seconds: number | null;
  consecutive_failures: number;
  error_count: number;
  error: string | null;
  last_error: string | null;
  checked_at: string | null;
  history: HistorySummary | null;
}

export interface StatusReport {
  enabled: boolean;
  config: string;
  primary: string | null;
  auto_failover: { enabled: boolean };
  last_backup: null;
  databases: DatabaseStatus[];
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function databaseStatus(
  db: DatabaseConfig,
  health: DatabaseHealth | undefined,
  history: HistorySummary | undefined,
  primary: string | undefined,
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
    status: !db.enabled ? 'disabled' : (health?.status ?? 'unknown'),
    response_time_seconds: last?.responseTimeSeconds ?? null,
    size_bytes: last?.sizeBytes ?? null,
    connections: last?.connections ?? null,
    in_recovery: last?.inRecovery ?? null,
    replication_lag_seconds: last?.replicationLagSeconds ?? null,
    consecutive_failures: health?.consecutiveFailures ?? 0,
    error_count: health?.errorCount ?? 0,
    error: last?.up === false ? (last.error ?? 'down') : null,
    last_error: health?.lastError ?? null,
    checked_at: iso(last?.checkedAt),
    history: history ?? null,
  };
}

export function statusReport(config: Config, databases: DatabaseStatus[], primary: string | undefined, autoFailover: boolean): StatusReport {
  return {
    enabled: config.enabled,
    config: config.file,
    primary: primary ?? null,
    auto_failover: { enabled: autoFailover },
    last_backup: null,
    databases,
  };
}
