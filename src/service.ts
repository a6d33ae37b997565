import fs from 'node:fs';
import os from 'node:os';
import { ActionSuppressed, AlertReceiver } from './alerting/receiver.js';
import { Backups, type BackupRecord, type CreateOptions as CreateBackupOptions } from './backup/backups.js';
import type { Config } from './config/load.js';
import { scrubSecrets } from './config/secrets.js';
import type { ProbeResult } from './engines/engine.js';
import { Engines } from './engines/index.js';
import { SqliteIdentities } from './engines/sqlite-identities.js';
import { SqliteIntegrityChecks } from './engines/sqlite-integrity.js';
import { SqliteReplication, type CopyPlan } from './engines/sqlite/replication.js';
import { SqliteArchive } from './engines/sqlite/archive.js';
import { LocalStorage } from './storage/local-storage.js';
import { replicationWarning } from './engines/sqlite/journal-mode.js';
import { PostgresArchiving } from './engines/postgres/archiving.js';
import { PointInTimeRestores } from './backup/point-in-time-restores.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './backup/point-in-time.js';
import { registerArchiveMetrics } from './metrics/archive-metrics.js';
import type { SqliteWatch } from './engines/sqlite.js';
import { ConflictError, InputError } from './errors.js';
import { demotedNote } from './failover/former-primary.js';
import { autoFailoverOf, primaryOf } from './failover/primary.js';
import { FailoverFailed, FailoverProcedure, type FailoverRequest } from './failover/procedure.js';
import { carryOutIntent } from './ha/intent-actions.js';
import { actAsLeader, NoLeaderAnswered, processName, type ActingDeps } from './ha/intents.js';
import { HaLoop } from './ha/loop.js';
import type { Logger } from './log.js';
import { registerBackupMetrics } from './metrics/backup-metrics.js';
import { registerOffsiteMetrics } from './metrics/offsite-metrics.js';
import { OffsiteCopies } from './backup/offsite-copies.js';
import { openOffsiteStorages } from './storage/open-storage.js';
import { registerReplicationMetrics } from './metrics/replication-metrics.js';
import { Metrics } from './metrics/registry.js';
import { Monitor } from './monitor/monitor.js';
import { SilentNotifier, WebhookNotifier, type Notifier } from './notifications/notifier.js';
import { openStateStore, type StoreOpening } from './state/open-store.js';
import type { Leadership } from './state/leadership.js';
import type { AlertRecord, ClusterState, FailoverRecord, SqliteIdentityRecord, StateStore, StateWatch } from './state/store.js';
import { clusterStatus, databaseStatus, restoreWindowStatus, lastBackupStatus, statusReport, type ClusterStatus, type DatabaseStatus, type LastBackupStatus, type StatusReport } from './status.js';

/** A database that answers but turns writes away: fenced (read-only by default), or a standby. */
function refusesWrites(probe: ProbeResult | undefined): boolean {
  return probe?.readOnly === true || probe?.inRecovery === true;
}

const EMPTY_STATE: ClusterState = { primary: undefined, epoch: 0, autoFailover: undefined, demoted: [], lastAutoFailoverAt: undefined };
/** The leader lease of a SQLite state store (one host), when the config gives no state.etcd.ttl. */
const DEFAULT_LEASE_TTL_SECONDS = 10;
/** How long a leader may take to carry out a claimed failover or backup before its submitter gives up waiting. */
const INTENT_FINISH_WAIT_MS = 10 * 60_000;
let instances = 0;

/**
 * The one object the CLI, the HTTP server and the library call: it wires
 * config, state, engines, monitor, failover and metrics together, and runs
 * the HA loop (one decision per probe of the primary) when started.
 */
export class DisasterRecoveryService {
  readonly engines: Engines;
  readonly monitor: Monitor;
  readonly metrics: Metrics;
  readonly notifier: Notifier;
  /** SQLite secondaries following their primary (WAL shipping; whole copies for a primary not in WAL mode). */
  readonly copies: SqliteReplication;
  /** Continuous archiving of SQLite primaries (backup.archive), leader only. */
  readonly archive: SqliteArchive;
  readonly alerts: AlertReceiver;
  readonly backups: Backups;
  /** Copies of backup_dir on the offsite destinations (copied by the leader; status read by every process). */
  readonly offsite: OffsiteCopies;
  readonly sqliteIdentities: SqliteIdentities;
  private readonly integrity: SqliteIntegrityChecks;
  private readonly pgArchiving: PostgresArchiving;
  readonly pointInTime: PointInTimeRestores;
  private readonly procedure: FailoverProcedure;
  private state: ClusterState = EMPTY_STATE;
  private readonly unrecordedAttempts = new Map<string, number>();
  private failoverUnderWay = false;
  /** This sidecar's name among the members, and the lease's holder (unique per process and instance). */
  readonly member: string;
  private readonly ttlMs: number;
  private readonly ha: HaLoop;
  private watch: StateWatch | undefined;
  /** The leader and members as a command (not the running sidecar) last read them. */
  private readCluster: { lease: ClusterStatus['lease']; members: ClusterStatus['members'] } | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private started = false;
  /** Why the state store cannot be trusted right now (its file lost and not written back): the sidecar does not act. */
  private storeProblem: string | undefined;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly store: StateStore = openStateStore(config.state, 'require'),
  ) {
    const enabled = config.topology.enabled();
    this.sqliteIdentities = new SqliteIdentities(store, log);
    this.integrity = new SqliteIntegrityChecks(config.monitoring.integrity_check_interval, log);
    const sqliteWatch: SqliteWatch = { identities: this.sqliteIdentities, integrity: this.integrity };
    this.engines = new Engines(enabled, (text) => scrubSecrets(text, config.secrets), sqliteWatch);
    this.monitor = new Monitor(
      this.engines.all(),
      {
        intervalSeconds: (name) => this.probeInterval(name),
        timeoutSeconds: config.monitoring.probe_timeout,
        historyRetentionHours: config.monitoring.history_retention_hours,
      },
      log,
    );
    const webhooks = config.notifications.webhooks;
    this.notifier =
      config.failover.notification_enabled && webhooks.length > 0
        ? new WebhookNotifier({ urls: webhooks, timeoutMs: config.notifications.timeout * 1000, attempts: 3, backoffMs: 1000 }, log)
        : new SilentNotifier();
    const backupStorage = new LocalStorage(config.backup.backup_dir);
    this.archive = new SqliteArchive(
      {
        enabled: config.backup.archive.enabled,
        root: config.backup.backup_dir,
        snapshotIntervalSeconds: config.backup.archive.snapshot_interval,
        retentionDays: config.backup.retention_days,
        databases: enabled.filter((d) => d.target.engine === 'sqlite').map((d) => d.name),
      },
      backupStorage,
      log,
    );
    this.copies = new SqliteReplication(this.engines, { intervalSeconds: config.failover.sync_interval }, () => this.copyPlan(), log, this.archive);
    sqliteWatch.replication = this.copies;
    this.metrics = new Metrics({
      databases: () =>
        enabled.map((d) => ({
          name: d.name,
          engine: d.target.engine,
          type: d.type,
          health: this.monitor.health(d.name)!,
          copyLagSeconds: this.copyLagSeconds(d.name),
          probeUnderWaySeconds: this.monitor.probeUnderWaySeconds(d.name),
        })),
      currentPrimary: () => this.currentPrimary(),
      autoFailoverEnabled: () => this.autoFailoverEnabled(),
      failoverCounts: () => this.failoverCounts(),
      sidecar: () => ({ isLeader: this.ha.isLeader(), members: this.ha.members().length }),
    });
    const destinations = openOffsiteStorages(config);
    this.offsite = new OffsiteCopies(config, log, destinations);
    this.backups = new Backups({
      config,
      log,
      offsite: destinations,
      currentPrimary: () => this.currentPrimary(),
      scrub: (text) => scrubSecrets(text, config.secrets),
      // A restore is the sidecar's own replacement of a file: what it leaves is the new baseline.
      restoring: {
        begin: (db) => (db.target.engine === 'sqlite' ? this.sqliteIdentities.beginReplace(db.name, db.target.file) : Promise.resolve()),
        end: async (db, restored) => {
          if (db.target.engine !== 'sqlite') return;
          if (restored) await this.sqliteIdentities.rebaseline(db.name, db.target.file, 'restore');
          else await this.sqliteIdentities.cancelReplace(db.name, db.target.file);
        },
      },
    });
    registerBackupMetrics(this.metrics.registry, this.backups);
    this.pgArchiving = PostgresArchiving.fromConfig(config, () => this.currentPrimary(), log);
    // One set of archive metrics, both engines' archivers reporting.
    registerArchiveMetrics(this.metrics.registry, { archiverReports: () => [...this.pgArchiving.archiverReports(), ...this.archive.archiverReports()] });
    this.pointInTime = new PointInTimeRestores(this.backups, destinations);
    registerOffsiteMetrics(this.metrics.registry, this.offsite);
    this.backups.onOutcome(() => this.offsite.wake());
    registerReplicationMetrics(this.metrics.registry, enabled.filter((d) => d.target.engine === 'sqlite').map((d) => d.name), this.copies.totals);
    this.procedure = new FailoverProcedure({
      config,
      engines: this.engines,
      store,
      notifier: this.notifier,
      log,
      lastCopyAt: (name) => this.copies.lastCopyAt(name),
      unshipped: (from, to) => this.copies.unshipped(from, to),
      countedUnrecorded: (trigger, result) => {
        const key = `${trigger}|${result}`;
        this.unrecordedAttempts.set(key, (this.unrecordedAttempts.get(key) ?? 0) + 1);
      },
    });
    this.alerts = new AlertReceiver({
      store,
      log,
      notifier: this.notifier,
      notificationsEnabled: config.failover.notification_enabled,
      counter: this.metrics.alertNotifications,
      context: () => ({
        databases: enabled.map((d) => d.name),
        currentPrimary: this.currentPrimary(),
        autoFailoverEnabled: this.autoFailoverEnabled(),
        lastAutoFailoverAt: this.state.lastAutoFailoverAt,
        cooldownSeconds: config.failover.cooldown,
        now: Date.now(),
        failoverUnderWay: this.failoverUnderWay,
      }),
      failover: (database, reason) => this.alertFailover(database, reason),
      backup: (database, reason) => this.alertBackup(database, reason),
    });
    const etcd = config.state.backend === 'etcd' ? config.state.etcd : undefined;
    this.member = etcd?.member ?? `${os.hostname()}:${config.server.port}`;
    this.ttlMs = (etcd?.ttl ?? DEFAULT_LEASE_TTL_SECONDS) * 1000;
    this.ha = new HaLoop({
      config,
      store,
      log,
      member: this.member,
      // Unique per process and instance: two sidecars given one name must still not share the lease.
      holder: `${this.member}/${process.pid}.${++instances}`,
      ttlMs: this.ttlMs,
      claimEveryMs: config.state.backend === 'etcd' ? 1000 : 200,
      // A little less than submitters wait: an intent its submitter may have given up on is refused, even with clocks 2 s apart.
      claimWaitMs: this.intentClaimWaitMs() - 2000,
      state: () => this.state,
      currentPrimary: () => this.currentPrimary(),
      autoFailoverEnabled: () => this.autoFailoverEnabled(),
      storeProblem: () => this.storeProblem,
      healths: () => enabled.map((d) => this.monitor.health(d.name)!),
      lagSeconds: (name) => this.copyLagSeconds(name),
      failoverUnderWay: () => this.failoverUnderWay,
      runFailover: (request, leadership) => this.runFailover(request, leadership),
      fenceResurrected: (name) => this.fenceResurrected(name),
      execute: (kind, params, leadership) =>
        carryOutIntent(kind, params, leadership, {
          failover: (request, l) => this.runFailover(request, l),
          autoFailover: (enabled) => this.applyAutoFailover(enabled),
          reinstate: (name) => this.applyReinstate(name),
          backup: (options) => this.backups.create(options),
        }),
      onLeadership: (leading) => this.onLeadership(leading),
    });
    this.monitor.on('probe', (health, previous) => this.ha.onProbe(health, previous));
  }

  restoreWindows(database?: string): Promise<RestoreWindow[]> {
    return this.pointInTime.windows(database);
  }

  restoreToTime(request: Omit<PointInTimeRequest, 'database'> & { database?: string }, options: { skipSafetyBackup?: boolean } = {}): Promise<PointInTimeOutcome> {
    return this.pointInTime.restore(request, options);
  }

  verifyArchives(): Promise<ArchiveVerification[]> {
    return this.pointInTime.verify();
  }

  /** A submitter waits this long for a leader to claim its intent: a lease's TTL (a dead leader replaced) and some. */
  private intentClaimWaitMs(): number {
    const etcd = this.config.state.backend === 'etcd' ? this.config.state.etcd : undefined;
    return (etcd?.ttl ?? DEFAULT_LEASE_TTL_SECONDS) * 1000 + 5000;
  }

  private acting(): ActingDeps {
    return {
      store: this.store,
      ttlMs: this.ttlMs,
      wait: { claimWaitMs: this.intentClaimWaitMs(), finishWaitMs: INTENT_FINISH_WAIT_MS },
      submitter: this.started ? this.member : processName('command'),
      ownLeadership: () => this.ha.leadership(),
      isSidecar: this.started,
    };
  }

  /** Leader-only work follows the leadership: the periodic copies check it, the schedule starts and stops with it. */
  private onLeadership(leading: boolean): void {
    if (leading) this.backups.startSchedule();
    else void this.backups.stop();
    if (leading) this.pgArchiving.start();
    else void this.pgArchiving.stop();
    if (leading) this.offsite.start();
    else void this.offsite.stop();
    if (leading) this.archive.start();
    else void this.archive.stop();
  }

  /**
   * An admitted failover alert (see decide): a primary that still answers (a
   * critically slow one) is replaced by a lossless switchover, a dead one by a failover.
   */
  private async alertFailover(database: string, reason: string): Promise<string> {
    // Admitted moments ago, but the action runs after the delivery was answered: the monitor's failover may have begun since.
    if (this.failoverUnderWay) throw new ActionSuppressed('a failover is already under way');
    let r: FailoverRecord;
    try {
      r = await this.failover({ trigger: 'alert', reason, expectedFrom: database, ifPrimaryAnswers: 'switch over' });
    } catch (error) {
      // Another process's failover, the primary already replaced, or a switch refused with nothing changed: no action of this alert's.
      const refused = error instanceof ConflictError && (!(error instanceof FailoverFailed) || error.record.result === 'refused');
      throw refused ? new ActionSuppressed((error as Error).message) : error;
    }
    if (r.result !== 'success') throw new Error(`${r.result}: ${r.error}`);
    return `${r.from} -> ${r.to} (epoch ${r.epoch}; ${r.dataSync?.complete ? 'lossless' : `not lossless: ${r.dataSync?.detail ?? 'no data sync'}`})`;
  }

  private async alertBackup(database: string | null, reason: string): Promise<string> {
    const made = await this.backup({ ...(database ? { database } : {}), name: 'alert', trigger: 'alert' });
    return `backup ${made.file} of ${made.database} (${reason})`;
  }

  /** A service on the config's state store, with the state read; only start-monitoring passes `create`. */
  static async open(config: Config, log: Logger, opening: StoreOpening = 'require'): Promise<DisasterRecoveryService> {
    const store = openStateStore(config.state, opening, (file) => log.warn({ state: file }, `disaster-recovery: created the state store ${file}`));
    let service: DisasterRecoveryService;
    try {
      service = new DisasterRecoveryService(config, log, store);
      await service.refreshState();
    } catch (error) {
      await store.close();
      throw error;
    }
    return service;
  }

  /** The database writes go to now. */
  currentPrimary(): string | undefined {
    return primaryOf(this.state, this.config);
  }

  autoFailoverEnabled(): boolean {
    return autoFailoverOf(this.state, this.config);
  }

  clusterState(): ClusterState {
    return this.state;
  }

  private async failoverCounts(): Promise<Array<{ trigger: string; result: string; count: number }>> {
    const counts: Array<{ trigger: string; result: string; count: number }> = await this.store.historyCounts();
    for (const [key, count] of this.unrecordedAttempts) {
      const [trigger, result] = key.split('|') as [string, string];
      counts.push({ trigger, result, count });
    }
    return counts;
  }

  /** Re-reads the shared state: another process (the CLI, a second sidecar) may have switched. */
  async refreshState(): Promise<ClusterState> {
    await this.checkStoreLocation();
    this.state = await this.store.read();
    return this.state;
  }

  /**
   * The running sidecar writes back a state file removed or replaced under it
   * (it holds the cluster's state open); until that succeeds it does not act.
   * Other processes follow the file at the path.
   */
  private async checkStoreLocation(): Promise<void> {
    if (!this.store.checkLocation) return;
    if (!this.started) {
      const followed = await this.store.checkLocation('follow');
      if (followed) this.log.warn(`disaster-recovery: ${followed}`);
      return;
    }
    try {
      const done = await this.store.checkLocation('write-back');
      if (done) this.log.error({ state: this.store.location }, `disaster-recovery: ${done}`);
      if (this.storeProblem) this.log.warn({ state: this.store.location }, 'disaster-recovery: the state store is back in place; the sidecar acts again');
      this.storeProblem = undefined;
    } catch (error) {
      const problem = `the state file was removed or replaced and could not be written back: ${(error as Error).message}`;
      if (this.storeProblem !== problem) this.log.error({ state: this.store.location }, `disaster-recovery: ${problem}; no failover and no copies until it can`);
      this.storeProblem = problem;
    }
  }

  /** The current primary as `GET /primary` answers it, read fresh from the shared state. */
  async primaryRoute(): Promise<{ usable: boolean; body: { name: string | null; engine: string | null; url: string | null; status: string; epoch: number; problem?: string } }> {
    // The running sidecar answers from its watched copy of the state (no store round trip per request).
    if (!this.started) await this.refreshState();
    const cutOff = this.ha.cutOff() ?? this.storeProblem;
    if (cutOff) {
      // Fail safe: a sidecar that cannot confirm the cluster state must not route writes to a primary that may have been replaced.
      const name = this.currentPrimary();
      const db = this.config.topology.get(name);
      return { usable: false, body: { name: name ?? null, engine: db?.target.engine ?? null, url: db?.displayUrl ?? null, status: 'unconfirmed', epoch: this.state.epoch, problem: cutOff } };
    }
    const name = this.currentPrimary();
    const db = this.config.topology.get(name);
    let health = name ? this.monitor.health(name) : undefined;
    // The last probe may predate a switch made by another process (a standby, read-only until
    // promoted): ask the database again before turning writers away.
    if (name && health?.status === 'up' && refusesWrites(health.last)) health = await this.monitor.probeNow(name);
    const status = !name ? 'none' : health?.status === 'up' && refusesWrites(health.last) ? 'read-only' : (health?.status ?? 'unknown');
    return {
      usable: status === 'up',
      body: { name: name ?? null, engine: db?.target.engine ?? null, url: db?.displayUrl ?? null, status, epoch: this.state.epoch },
    };
  }

  /** Probes every enabled database once, concurrently, and reports each. */
  async test(): Promise<DatabaseStatus[]> {
    await this.monitor.probeAll();
    return this.databaseStatuses().filter((d) => d.enabled);
  }

  status(): StatusReport {
    const report = statusReport(
      this.config,
      this.databaseStatuses(),
      this.state,
      {
        enabled: this.autoFailoverEnabled(),
        source: this.state.autoFailover === undefined ? 'config' : 'operator',
        held: this.storeProblem ?? this.ha.cutOff() ?? this.ha.heldWhy(this.currentPrimary()) ?? this.derivedHold(),
      },
      this.lastBackup(),
      { path: this.store.location ?? this.config.state.path, problem: this.storeProblem ?? null },
      this.cluster(),
      this.offsite.status(),
    );
    return { ...report, restore_windows: this.archive.cachedWindows().map(restoreWindowStatus) };
  }

  /** The leader, the members and the lease: the running sidecar's own knowledge, else what refreshCluster read. */
  cluster(): ClusterStatus {
    const lease = this.started ? this.ha.lease() : undefined;
    const leaseStatus = this.started ? (lease ? { holder: lease.holder, expires_at: new Date(lease.expiresAt).toISOString(), ttl_seconds: this.ttlMs / 1000 } : null) : (this.readCluster?.lease ?? null);
    return clusterStatus({
      backend: this.config.state.backend,
      member: this.started ? this.member : null,
      isLeader: this.started && this.ha.isLeader(),
      lease: leaseStatus,
      members: this.started ? this.ha.members().map((m) => ({ name: m.name, last_heartbeat: new Date(m.publishedAt).toISOString(), view: m.view })) : (this.readCluster?.members ?? []),
      cutOff: this.started ? (this.ha.cutOff() ?? null) : null,
    });
  }

  /** For a command: reads the lease and the members once (the running sidecar keeps its own). */
  async refreshCluster(): Promise<void> {
    const [lease, members] = await Promise.all([this.store.leaseHolder(), this.store.members()]);
    this.readCluster = {
      lease: lease ? { holder: lease.holder, expires_at: new Date(lease.expiresAt).toISOString(), ttl_seconds: this.ttlMs / 1000 } : null,
      members: members.filter((m) => m.view.stopped !== true).map((m) => ({ name: m.name, last_heartbeat: new Date(m.publishedAt).toISOString(), view: m.view })),
    };
  }

  /** The newest good backup of any enabled database, from the backup catalogue. */
  lastBackup(): LastBackupStatus | null {
    const newest = this.backups.lastBackup();
    return newest ? lastBackupStatus(newest) : null;
  }

  /** Why a primary that is down right now is not being replaced (for a process that does not run the HA loop). */
  private derivedHold(): string | null {
    const primary = this.currentPrimary();
    const health = primary ? this.monitor.health(primary) : undefined;
    if (!primary || health?.status !== 'down') return null;
    if (!this.autoFailoverEnabled()) return `primary ${primary} is down and automatic failover is disabled`;
    if (this.started && !this.ha.isLeader()) return `primary ${primary} is down; this sidecar follows: the leader (${this.cluster().leader ?? 'none yet'}) decides`;
    return null;
  }

  /**
   * Manual failover/switchover (target given) or a choice by priority (alerts):
   * run here when this process leads (or nobody does, for the moment of it),
   * else handed to the leader as an intent, with the epoch it was asked in.
   */
  async failover(request: FailoverRequest): Promise<FailoverRecord> {
    if (this.storeProblem) throw new ConflictError(`no failover while the state store cannot be trusted: ${this.storeProblem}`);
    if (!this.started) await this.refreshState();
    const { trigger, reason, target, expectedFrom, ifPrimaryAnswers } = request;
    const params = { trigger, reason, target, expectedFrom, ifPrimaryAnswers, expectedEpoch: request.expectedEpoch ?? this.state.epoch };
    try {
      return await actAsLeader(this.acting(), 'failover', params, (leadership) => this.runFailover(request, leadership));
    } catch (error) {
      // An operator's attempt is history, also when no leader took it.
      if (error instanceof NoLeaderAnswered && trigger === 'manual') await this.recordUntaken(request, error.message);
      throw error;
    } finally {
      if (!this.started) await this.refreshState();
    }
  }

  private async recordUntaken(request: FailoverRequest, why: string): Promise<void> {
    const now = new Date().toISOString();
    await this.store.appendHistory({
      epoch: null,
      startedAt: now,
      finishedAt: now,
      from: this.currentPrimary() ?? null,
      to: request.target ?? null,
      trigger: request.trigger,
      reason: request.reason,
      result: 'refused',
      error: why,
      dataSync: null,
      phases: {},
    });
  }

  /** The failover itself, under `leadership` (this sidecar's, or a command's for the moment). */
  private async runFailover(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord> {
    if (this.storeProblem) throw new ConflictError(`no failover while the state store cannot be trusted: ${this.storeProblem}`);
    this.failoverUnderWay = true;
    try {
      return await this.procedure.run(request, leadership);
    } finally {
      this.failoverUnderWay = this.procedure.running;
      await this.refreshState().catch((error) => this.log.error({ err: error }, 'disaster-recovery: the state could not be read after a failover'));
    }
  }

  /** A backup on request (CLI, API, webhook, library): taken by the leader. */
  backup(options: CreateBackupOptions): Promise<BackupRecord> {
    const { database, name, trigger } = options;
    return actAsLeader(this.acting(), 'backup', { database, name, trigger }, () => this.backups.create(options));
  }

  async setAutoFailover(enabled: boolean): Promise<void> {
    await actAsLeader(this.acting(), 'auto_failover', { enabled }, () => this.applyAutoFailover(enabled));
    await this.refreshState();
  }

  private async applyAutoFailover(enabled: boolean): Promise<void> {
    await this.store.setAutoFailover(enabled);
    await this.refreshState();
    this.log.warn({ enabled }, `disaster-recovery: automatic failover ${enabled ? 'enabled' : 'disabled'} by an operator`);
  }

  /** An operator's word that a demoted former primary may be chosen automatically again. */
  async reinstate(name: string): Promise<void> {
    const db = this.config.topology.require(name);
    if (!db.enabled) throw new InputError(`${name} is disabled in the config (enabled: false), so it is never a candidate; enable it there first`);
    await actAsLeader(this.acting(), 'reinstate', { name }, () => this.applyReinstate(name));
    await this.refreshState();
  }

  private async applyReinstate(name: string): Promise<void> {
    await this.refreshState();
    if (name === this.currentPrimary()) {
      throw new ConflictError(`${name} is the current primary; reinstate is for a demoted former primary (see status), nothing changed`);
    }
    await this.store.reinstate(name);
    await this.refreshState();
    this.log.warn({ database: name }, `disaster-recovery failover: ${name} reinstated as a candidate`);
  }

  /**
   * An operator's word that the SQLite file now at `name`'s path is its data (replaced on purpose):
   * it becomes the baseline the sidecar judges the file against, here and in every running sidecar.
   */
  async acceptFile(name: string): Promise<{ before: SqliteIdentityRecord | undefined; after: SqliteIdentityRecord }> {
    const db = this.config.topology.require(name);
    if (db.target.engine !== 'sqlite') throw new InputError(`database "${name}" is ${db.target.engine}: accept-file is for SQLite files`);
    const file = db.target.file;
    if (!fs.existsSync(file)) throw new ConflictError(`${file} does not exist: there is no file of ${name} to accept`);
    const before = await this.sqliteIdentities.recorded(name, file);
    const after = await this.sqliteIdentities.rebaseline(name, file, 'accepted');
    if (!after) throw new ConflictError(`${file} is not a SQLite database that can be read: nothing accepted`);
    this.log.warn({ database: name, file, identity: after.identity }, `disaster-recovery identity: the file of ${name} was accepted by an operator as its data (${file})`);
    return { before, after };
  }

  history(limit: number): Promise<FailoverRecord[]> {
    return this.store.history(limit);
  }

  /** Alert deliveries as the webhook recorded them, newest first (the status page). */
  alertRecords(limit: number): Promise<AlertRecord[]> {
    return this.store.alerts(limit);
  }

  /** The newest good backup of each enabled database that has one (the status page); an unreadable folder has none. */
  newestBackups(): BackupRecord[] {
    return this.backups.databases().flatMap((d) => {
      try {
        return this.backups.newestGood(d.name) ?? [];
      } catch {
        return [];
      }
    });
  }

  /** Runs the sidecar: probes, the HA loop, periodic copies, state refresh. */
  async start(): Promise<void> {
    this.started = true;
    await this.refreshState();
    this.watch = this.store.watch(
      (state) => (this.state = state),
      (error) => this.ha.storeFailed(error),
    );
    this.integrity.start();
    this.monitor.start();
    this.copies.start();
    // Campaigns at once: a lone sidecar leads from its first moment (and then starts the backup schedule).
    await this.ha.start();
    // A store kept in a file is also checked (and written back) every second; etcd's watch needs no polling.
    if (this.store.checkLocation) this.refreshTimer = setInterval(() => void this.refreshState().catch((e) => this.ha.storeFailed(e as Error)), 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.watch?.stop();
    await this.ha.stop();
    await this.backups.stop();
    await this.pgArchiving.stop();
    await this.offsite.stop();
    await this.alerts.drain();
    await this.monitor.stop();
    await this.copies.stop();
    await this.archive.stop();
    // A hung webhook must not hold the shutdown: deliveries get a short grace.
    await this.notifier.drain(2000);
    await this.engines.close();
    await this.store.close();
  }

  /** Age of the last periodic copy into `name` from the current primary; none for a database nobody copies to now. */
  private copyLagSeconds(name: string): number | undefined {
    return this.copies.lagSeconds(name, this.state.epoch);
  }

  private probeInterval(name: string): number {
    const { check_interval } = this.config.monitoring;
    if (name !== this.currentPrimary() || !this.autoFailoverEnabled()) return check_interval;
    return Math.min(check_interval, this.config.failover.health_check_interval);
  }

  /**
   * What the periodic copy does now, from the shared state read afresh: another
   * process (the CLI) may have switched since the last refresh, and a copy of
   * the old primary over the new one would undo the writes made there since.
   */
  private async copyPlan(): Promise<CopyPlan> {
    const { epoch } = await this.refreshState();
    const primary = this.currentPrimary();
    const up = primary !== undefined && this.monitor.health(primary)?.status === 'up';
    return {
      primary: up ? primary : undefined,
      exclude: [...this.state.demoted, ...(primary ? [primary] : [])],
      // Only the leader copies (a sidecar that is not started copies only when asked: copyOnce).
      allowed: !this.failoverUnderWay && !this.storeProblem && (!this.started || this.ha.isLeader()),
      release: this.started && !this.ha.isLeader(),
      epoch,
      stillValid: async () => {
        const now = await this.store.read();
        if (now.epoch !== epoch) return `the primary changed (epoch ${epoch} -> ${now.epoch})`;
        if (this.failoverUnderWay) return 'a failover is under way';
        const own = this.ha.leadership();
        if (this.started && !own) return 'this sidecar is no longer the leader';
        const lease = await this.store.leaseHolder();
        return lease && lease.holder !== own?.holder ? `a failover is under way (${lease.holder} holds the leadership)` : undefined;
      },
    };
  }

  /** A demoted PostgreSQL primary that comes back writable is made read-only again before anyone writes to it. */
  private async fenceResurrected(name: string): Promise<void> {
    try {
      const fence = await this.engines.get(name)!.fence(this.config.monitoring.probe_timeout * 1000);
      await fence.keep();
      this.log.warn({ database: name }, `disaster-recovery failover: former primary ${name} came back writable and was fenced (read-only)`);
    } catch (error) {
      this.log.error({ database: name, err: error }, `disaster-recovery failover: could not fence the returning former primary ${name}`);
    }
  }

  private databaseStatuses(): DatabaseStatus[] {
    const primary = this.currentPrimary();
    return this.config.topology.all().map((db) =>
      databaseStatus(db, this.monitor.health(db.name), this.monitor.history(db.name)?.summary(), primary, {
        demoted: this.state.demoted.includes(db.name),
        demotedNote: demotedNote(db.name, db.target.engine, primary),
        copyLagSeconds: this.copyLagSeconds(db.name),
        replicationWarning: db.name === primary ? replicationWarning(db, this.config.databases) : undefined,
      }),
    );
  }
}
