import type { BackupRecord } from './backup/backups.js';
import { maskDatabaseUrl } from './config/database-url.js';
import { loadConfig, resolveConfigPath, type Config } from './config/load.js';
import { primaryOf } from './failover/primary.js';
import { createLogger, type Logger } from './log.js';
import { DisasterRecoveryService } from './sidecar.js';
import { isPrimaryLost, PostgresSessions, SqliteSessions, type Session, type SessionTarget } from './session.js';
import { ConfirmedState, SQLITE_STATE_TTL_MS } from './state/confirmed-state.js';
import type { ClusterState, FailoverRecord } from './state/store.js';
import type { DatabaseStatus, StatusReport } from './status.js';

export interface ManagerOptions {
  /** A loaded config; else `configPath` (default $DR_CONFIG or config/config.yaml) is read. */
  config?: Config;
  configPath?: string;
  logger?: Logger;
  /** Connections per PostgreSQL database in the application's pool (default 10). */
  poolSize?: number;
  /**
   * How long `withSession` waits for a failover after the primary is lost, and
   * for a SQLite primary's write lock (a switchover holds it while it copies)
   * (default: health_check_interval × detection_threshold + probe_timeout + 10 s).
   */
  failoverWaitMs?: number;
  /**
   * Create the state store when it does not exist, as start-monitoring does: only for an
   * application that runs the monitoring itself (`startMonitoring()`) instead of the sidecar.
   * Otherwise a missing store is refused (StateStoreMissing), never quietly made empty.
   */
  createStateStore?: boolean;
}

/** How long the watched state is trusted without a confirmation, and how messages name the store. */
function stateTrust(config: Config): { ttlMs: number; where: string; ttlSource: string } {
  const { etcd } = config.state;
  if (config.state.backend === 'etcd' && etcd) return { ttlMs: etcd.ttl * 1000, where: `etcd (${etcd.endpoints.map(maskDatabaseUrl).join(', ')})`, ttlSource: 'state.etcd.ttl' };
  return { ttlMs: SQLITE_STATE_TTL_MS, where: config.state.path, ttlSource: 'the SQLite store\'s default' };
}

/**
 * The library's face for applications: the TypeScript counterpart of the
 * guide's EnhancedDatabaseManager. Sessions always go to the current primary
 * (shared with the sidecar through the state store), as the store's watch
 * delivers it: no store read per commit (see state/confirmed-state.ts).
 */
export class DisasterRecoveryManager {
  private readonly targets = new Map<string, SessionTarget>();
  private readonly failoverWaitMs: number;
  private readonly locationTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly service: DisasterRecoveryService,
    private readonly view: ConfirmedState,
    private readonly options: ManagerOptions,
  ) {
    const { failover, monitoring } = service.config;
    this.failoverWaitMs =
      options.failoverWaitMs ?? (Math.min(failover.health_check_interval, monitoring.check_interval) * failover.detection_threshold + monitoring.probe_timeout + 10) * 1000;
    // A state file replaced at its path is followed (the watch moves with the store), checked every second as the sidecar does.
    const { store, log } = service;
    if (store.checkLocation) {
      this.locationTimer = setInterval(() => {
        store.checkLocation?.('follow').then(
          (followed) => followed && log.warn(`disaster-recovery: ${followed}`),
          (error: unknown) => log.error({ err: error }, 'disaster-recovery: the state store at its path cannot be opened'),
        );
      }, 1000).unref();
    }
  }

  static async open(options: ManagerOptions = {}): Promise<DisasterRecoveryManager> {
    const config = options.config ?? loadConfig(resolveConfigPath(options.configPath));
    const log = options.logger ?? createLogger({ level: config.logging.level, file: config.logging.file, secrets: config.secrets });
    const service = await DisasterRecoveryService.open(config, log, options.createStateStore ? 'create' : 'require');
    const view = new ConfirmedState(service.store, {
      ...stateTrust(config),
      onTrustChange: (trusted, why) =>
        trusted ? log.warn('disaster-recovery session: the cluster state is confirmed again; sessions commit again') : log.error(`disaster-recovery session: ${why}`),
    });
    await view.ready();
    return new DisasterRecoveryManager(service, view, options);
  }

  /**
   * Runs `fn` in a transaction on the current primary. When the primary is
   * lost on the way (down, fenced, switched), waits for the failover and runs
   * `fn` once more on the new primary. `fn` should be safe to run twice (a
   * commit whose answer was lost may have happened): use unique keys.
   * Throws ClusterStateUnconfirmed, committing nothing, while the state store
   * has not confirmed the cluster state for longer than its lease TTL.
   */
  async withSession<T>(fn: (session: Session) => Promise<T> | T): Promise<T> {
    const state = this.view.current();
    try {
      return await this.runOn(state, fn);
    } catch (error) {
      if (!isPrimaryLost(error)) throw error;
      this.service.log.warn({ err: error }, 'disaster-recovery session: primary lost, waiting for the failover');
      // At the deadline the current primary is tried anyway.
      await this.view.waitForSwitch(state.epoch, this.failoverWaitMs);
      return this.runOn(this.view.current(), fn);
    }
  }

  /** A backup of the current primary (the guide's create_backup); resolves with its catalogue record. */
  async createBackup(name?: string): Promise<BackupRecord> {
    await this.service.refreshState();
    return this.service.backup({ ...(name === undefined ? {} : { name }), trigger: 'manual' });
  }

  manualFailover(target: string, reason = 'manual failover'): Promise<FailoverRecord> {
    return this.service.failover({ trigger: 'manual', target, reason, ifPrimaryAnswers: 'switch over' });
  }

  /** Every configured database, the current primary marked. */
  async getDatabaseInfo(): Promise<StatusReport> {
    await this.service.refreshState();
    return this.service.status();
  }

  /** Probes every database now. */
  getHealthStatus(): Promise<DatabaseStatus[]> {
    return this.service.test();
  }

  async getFailoverStatus(): Promise<{ primary: string | null; epoch: number; auto_failover: StatusReport['auto_failover']; demoted: string[]; history: FailoverRecord[] }> {
    const state = await this.service.refreshState();
    const status = this.service.status();
    return { primary: status.primary, epoch: state.epoch, auto_failover: status.auto_failover, demoted: state.demoted, history: await this.service.history(10) };
  }

  /** Runs the probes, the HA loop and the periodic copies in this process (as `start-monitoring` does). */
  startMonitoring(): Promise<void> {
    return this.service.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.locationTimer);
    this.view.stop();
    await Promise.all([...this.targets.values()].map((t) => t.close()));
    this.targets.clear();
    await this.service.stop();
  }

  private async runOn<T>(state: ClusterState, fn: (session: Session) => Promise<T> | T): Promise<T> {
    const config = this.service.config;
    const name = primaryOf(state, config);
    if (!name) throw new Error('no primary database is configured');
    const { epoch } = state;
    const holds = (now: ClusterState) => now.epoch === epoch && primaryOf(now, config) === name;
    const target = this.target(name);
    // PostgreSQL's fence (read-only) outlasts the record of a switch: the watched copy is enough. SQLite's
    // (its write lock) ends with it: under the lock the state must be as of now (see state/confirmed-state.ts).
    const stillPrimary = target.fenceOutlastsSwitch ? () => holds(this.view.current()) : async () => holds(await this.view.fresh());
    return target.run(epoch, fn, stillPrimary);
  }

  private target(name: string): SessionTarget {
    let target = this.targets.get(name);
    if (!target) {
      const db = this.service.config.topology.require(name);
      target = db.target.engine === 'postgresql' ? new PostgresSessions(db, this.options.poolSize ?? 10) : new SqliteSessions(db, this.failoverWaitMs);
      this.targets.set(name, target);
    }
    return target;
  }
}
