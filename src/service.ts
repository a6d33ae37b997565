import type { Config, DatabaseConfig } from './config/load.js';
import { scrubSecrets } from './config/load.js';
import { Engines } from './engines/index.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/registry.js';
import { Monitor } from './monitor/monitor.js';
import { databaseStatus, statusReport, type DatabaseStatus, type StatusReport } from './status.js';

/**
 * The one object the CLI, the HTTP server and the library call: it wires
 * config, engines, monitor and metrics together.
 */
export class DisasterRecoveryService {
  readonly engines: Engines;
  readonly monitor: Monitor;
  readonly metrics: Metrics;
  private readonly enabled: DatabaseConfig[];

  constructor(
    readonly config: Config,
    readonly log: Logger,
  ) {
    this.enabled = config.databases.filter((d) => d.enabled);
    this.engines = new Engines(this.enabled, (text) => scrubSecrets(text, config.secrets));
    this.monitor = new Monitor(
      this.engines.all(),
      {
        intervalSeconds: config.monitoring.check_interval,
        timeoutSeconds: config.monitoring.probe_timeout,
        historyRetentionHours: config.monitoring.history_retention_hours,
      },
      log,
    );
    this.metrics = new Metrics({
      databases: () =>
        this.enabled.map((d) => ({ name: d.name, engine: d.target.engine, type: d.type, health: this.monitor.health(d.name)! })),
      currentPrimary: () => this.currentPrimary(),
      autoFailoverEnabled: () => this.autoFailoverEnabled(),
    });
  }

  /** The database writes go to now. */
  currentPrimary(): string | undefined {
    return this.enabled.find((d) => d.type === 'primary')?.name;
  }

  autoFailoverEnabled(): boolean {
    return this.config.failover.enable_auto_failover;
  }

  /** Probes every enabled database once, concurrently, and reports each. */
  async test(): Promise<DatabaseStatus[]> {
    await this.monitor.probeAll();
    return this.databaseStatuses().filter((d) => d.enabled);
  }

  status(): StatusReport {
    return statusReport(this.config, this.databaseStatuses(), this.currentPrimary(), this.autoFailoverEnabled());
  }

  start(): void {
    this.monitor.start();
  }

  async stop(): Promise<void> {
    await this.monitor.stop();
    await this.engines.close();
  }

  private databaseStatuses(): DatabaseStatus[] {
    const primary = this.currentPrimary();
    return this.config.databases.map((db) =>
      databaseStatus(db, this.monitor.health(db.name), this.monitor.history(db.name)?.summary(), primary),
    );
  }
}
