import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { DatabaseHealth } from '../monitor/health.js';

/** What the metrics read at scrape time; the service provides it. */
export interface MetricsSource {
  /** Enabled databases with their health and engine. */
  databases(): Array<{ name: string; engine: string; type: string; health: DatabaseHealth; copyLagSeconds: number | undefined; probeUnderWaySeconds?: number | undefined }>;
  currentPrimary(): string | undefined;
  autoFailoverEnabled(): boolean;
  /** Failover attempts by trigger and result: the shared history, plus attempts this process did not record. */
  failoverCounts(): Promise<Array<{ trigger: string; result: string; count: number }>>;
  /** This sidecar among the members sharing the cluster state: whether it leads, how many members are alive. */
  sidecar?(): { isLeader: boolean; members: number };
}

type DatabaseRow = ReturnType<MetricsSource['databases']>[number];

/**
 * Every metric of the sidecar, on a registry of its own (no global state).
 * Per-database gauges are computed at scrape time from the monitor's state.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly alertNotifications: Counter<'action' | 'result'>;
  /** The databases as one scrape sees them: read once, shared by every per-database metric of that scrape. */
  private scrape: DatabaseRow[] | undefined;

  constructor(private readonly source: MetricsSource) {
    const registry = this.registry;
    const databases = () => this.scrape ?? source.databases();
    collectDefaultMetrics({ register: registry });
    // Gauges named *_total, which `promtool check metrics` rejects; the same counts stay
    // in nodejs_active_{handles,requests,resources}{type}.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(name);
    }
    // Measured at scrape time with setImmediate: every scrape would wait a whole turn of a busy
    // event loop. The same delay is in nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds.
    registry.removeSingleMetric('nodejs_eventloop_lag_seconds');

    const perDatabase = (name: string, help: string, value: (d: DatabaseRow) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['database'],
        registers: [registry],
        collect() {
          this.reset();
          for (const d of databases()) {
            const v = value(d);
            if (v !== undefined && Number.isFinite(v)) this.set({ database: d.name }, v);
          }
        },
      });
    const probed = (d: { health: DatabaseHealth }) => d.health.last;

    perDatabase('dr_database_up', '1 when the last probe of the database succeeded, 0 when it failed.', (d) =>
      d.health.status === 'unknown' ? undefined : d.health.status === 'up' ? 1 : 0,
    );
    perDatabase(
      'dr_database_response_time_seconds',
      'Duration of the last probe (a real query), until answer, error or timeout; while a probe under way has taken longer, its time so far.',
      (d) => responseTime(probed(d)?.responseTimeSeconds, d.probeUnderWaySeconds),
    );
    perDatabase('dr_database_connections', 'Sessions connected to the database (PostgreSQL pg_stat_activity).', (d) => probed(d)?.connections);
    perDatabase('dr_database_size_bytes', 'Size of the database: pg_database_size, or the SQLite file plus its WAL.', (d) => probed(d)?.sizeBytes);
    perDatabase('dr_database_consecutive_failures', 'Failed probes in a row; failover is considered at detection_threshold.', (d) => d.health.consecutiveFailures);
    perDatabase('dr_database_is_primary', '1 for the database the sidecar routes writes to now, else 0.', (d) => (d.name === source.currentPrimary() ? 1 : 0));
    perDatabase('dr_database_in_recovery', '1 when the server says it is a standby (pg_is_in_recovery), 0 when it accepts writes.', (d) => {
      const r = probed(d)?.inRecovery;
      return r === undefined ? undefined : r ? 1 : 0;
    });
    perDatabase('dr_database_read_only', '1 when a new session of the database is read-only by default (a fence), so it refuses writes; 0 when not.', (d) => {
      const r = probed(d)?.readOnly;
      return r === undefined ? undefined : r ? 1 : 0;
    });
    perDatabase(
      'dr_replication_lag_seconds',
      'How far the secondary is behind the primary, in seconds: PostgreSQL replay lag, or the age of the last copy into a SQLite secondary.',
      (d) => (d.name === source.currentPrimary() ? undefined : (probed(d)?.replicationLagSeconds ?? d.copyLagSeconds)),
    );
    perDatabase('dr_database_last_probe_timestamp_seconds', 'Unix time of the last probe of the database.', (d) => {
      const at = probed(d)?.checkedAt;
      return at === undefined ? undefined : at / 1000;
    });

    new Counter({
      name: 'dr_database_errors_total',
      help: 'Failed probes of the database since the sidecar started.',
      labelNames: ['database'],
      registers: [registry],
      collect() {
        this.reset();
        for (const d of databases()) this.inc({ database: d.name }, d.health.errorCount);
      },
    });

    new Gauge({
      name: 'dr_database_info',
      help: 'Configured databases: engine and configured type; value always 1.',
      labelNames: ['database', 'engine', 'type'],
      registers: [registry],
      collect() {
        this.reset();
        for (const d of databases()) this.set({ database: d.name, engine: d.engine, type: d.type }, 1);
      },
    });

    // From the history in the state store: a failover run by the CLI (its own process) counts too.
    new Counter({
      name: 'dr_failovers_total',
      help: 'Failover attempts by trigger (auto, manual, alert) and result (success, failed, no_candidate, refused).',
      labelNames: ['trigger', 'result'],
      registers: [registry],
      async collect() {
        const counts = await source.failoverCounts();
        this.reset();
        for (const trigger of ['auto', 'manual', 'alert']) {
          for (const result of ['success', 'failed', 'no_candidate', 'refused']) this.inc({ trigger, result }, 0);
        }
        for (const { trigger, result, count } of counts) this.inc({ trigger, result }, count);
      },
    });

    this.alertNotifications = new Counter({
      name: 'dr_alert_notifications_total',
      help: 'Alertmanager alerts received, by the action they map to and what became of them (executed, failed, recorded, resolved, suppressed, ignored, duplicate).',
      labelNames: ['action', 'result'],
      registers: [registry],
    });

    new Gauge({
      name: 'dr_auto_failover_enabled',
      help: '1 when automatic failover is enabled, else 0.',
      registers: [registry],
      collect() {
        this.set(source.autoFailoverEnabled() ? 1 : 0);
      },
    });

    new Gauge({
      name: 'dr_sidecar_is_leader',
      help: '1 while this sidecar holds the leader lease (it alone fails over, copies, backs up on schedule and carries out intents), else 0.',
      registers: [registry],
      collect() {
        this.set(source.sidecar?.().isLeader ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dr_sidecar_members',
      help: 'Sidecars whose published view has not expired (this one included), as this sidecar last read them.',
      registers: [registry],
      collect() {
        this.set(source.sidecar?.().members ?? 0);
      },
    });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  expose(): Promise<string> {
    // Every metric's collect() runs synchronously inside metrics(), before its first await.
    this.scrape = this.source.databases();
    try {
      return this.registry.metrics();
    } finally {
      this.scrape = undefined;
    }
  }
}

/**
 * A database that has not answered for 8 s has a response time of at least
 * 8 s: a slow probe shows while it runs, not only for the moment between its
 * answer and the next probe, so a response_time rule can see it.
 */
export function responseTime(lastSeconds: number | undefined, underWaySeconds: number | undefined): number | undefined {
  if (lastSeconds === undefined || underWaySeconds === undefined) return lastSeconds;
  return Math.max(lastSeconds, underWaySeconds);
}
