import type { BackupRecord } from './backup/backups.js';
import { loadConfig, resolveConfigPath, type Config } from './config/load.js';
import { createLogger, type Logger } from './log.js';
import { DisasterRecoveryService } from './service.js';
import { isPrimaryLost, PostgresSessions, SqliteSessions, type Session, type SessionTarget } from './session.js';
import type { FailoverRecord } from './state/store.js';
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

/**
 * The library's face for applications: the TypeScript counterpart of the
 * guide's EnhancedDatabaseManager. Sessions always go to the current primary
 * (shared with the sidecar through the state store).
 */
export class DisasterRecoveryManager {
  private readonly targets = new Map<string, SessionTarget>();
  private readonly failoverWaitMs: number;

  private constructor(
    readonly service: DisasterRecoveryService,
    private readonly options: ManagerOptions,
  ) {
    const { failover, monitoring } = service.config;
    this.failoverWaitMs =
      options.failoverWaitMs ?? (Math.min(failover.health_check_interval, monitoring.check_interval) * failover.detection_threshold + monitoring.probe_timeout + 10) * 1000;
  }

  static async open(options: ManagerOptions = {}): Promise<DisasterRecoveryManager> {
    const config = options.config ?? loadConfig(resolveConfigPath(options.configPath));
    const log = options.logger ?? createLogger({ level: config.logging.level, file: config.logging.file, secrets: config.secrets });
    return new DisasterRecoveryManager(await DisasterRecoveryService.open(config, log, options.createStateStore ? 'create' : 'require'), options);
  }

  /**
   * Runs `fn` in a transaction on the current primary. When the primary is
   * lost on the way (down, fenced, switched), waits for the failover and runs
   * `fn` once more on the new primary. `fn` should be safe to run twice (a
   * commit whose answer was lost may have happened): use unique keys.
   */
  async withSession<T>(fn: (session: Session) => Promise<T> | T): Promise<T> {
    const { epoch } = await this.service.refreshState();
    try {
      return await this.runOn(epoch, fn);
    } catch (error) {
      if (!isPrimaryLost(error)) throw error;
      this.service.log.warn({ err: error }, 'disaster-recovery session: primary lost, waiting for the failover');
      const next = await this.waitForSwitch(epoch);
      return this.runOn(next, fn);
    }
  }

  /** A backup of the current primary (the guide's create_backup); resolves with its catalogue record. */
  createBackup(name?: string): Promise<BackupRecord> {
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
    await Promise.all([...this.targets.values()].map((t) => t.close()));
    this.targets.clear();
    await this.service.stop();
  }

  private async runOn<T>(epoch: number, fn: (session: Session) => Promise<T> | T): Promise<T> {
    const name = this.service.currentPrimary();
    if (!name) throw new Error('no primary database is configured');
    const stillPrimary = async () => {
      const state = await this.service.refreshState();
      return state.epoch === epoch && this.service.currentPrimary() === name;
    };
    return this.target(name).run(epoch, fn, stillPrimary);
  }

  /** Waits until the state records a switch after `epoch`; at the deadline, tries the current primary anyway. */
  private async waitForSwitch(epoch: number): Promise<number> {
    const deadline = Date.now() + this.failoverWaitMs;
    for (;;) {
      const state = await this.service.refreshState();
      if (state.epoch !== epoch || Date.now() > deadline) return state.epoch;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private target(name: string): SessionTarget {
    let target = this.targets.get(name);
    if (!target) {
      const db = this.service.config.databases.find((d) => d.name === name)!;
      target = db.target.engine === 'postgresql' ? new PostgresSessions(db, this.options.poolSize ?? 10) : new SqliteSessions(db, this.failoverWaitMs);
      this.targets.set(name, target);
    }
    return target;
  }
}
