/**
 * Wiring only: builds the parts of a sidecar (topology, state store and its
 * watched copy, engines, monitor, replication, metrics, backups, failover,
 * requests, alerts, the HA loop) and connects them. What each part decides
 * lives in its own file; the CLI, the HTTP server and the library call the
 * methods below, each one line into a part.
 */
import os from 'node:os';
import { AlertReceiver } from './alerting/receiver.js';
import { Backups, type BackupRecord, type CreateOptions as CreateBackupOptions } from './backup/backups.js';
import { OffsiteCopies } from './backup/offsite-copies.js';
import { PointInTimeRestores } from './backup/point-in-time-restores.js';
import { RestoreWindowCache, restoreWindowStatus } from './backup/restore-window-cache.js';
import type { ArchiveVerification, PointInTimeOutcome, PointInTimeRequest, RestoreWindow } from './backup/point-in-time.js';
import { PostgresArchiving } from './engines/postgres/archiving.js';
import type { DrillRequest, Drills } from './drill/drills.js';
import { createDrills } from './drill/service-drills.js';
import { registerDrillMetrics } from './metrics/drill-metrics.js';
import { registerArchiveMetrics } from './metrics/archive-metrics.js';
import { registerOffsiteMetrics } from './metrics/offsite-metrics.js';
import { openOffsiteStorages } from './storage/open-storage.js';
import type { Config } from './config/load.js';
import { scrubSecrets } from './config/secrets.js';
import { Engines } from './engines/index.js';
import { SqliteIdentities } from './engines/sqlite-identities.js';
import { SqliteIntegrityChecks } from './engines/sqlite-integrity.js';
import { SqliteReplication } from './engines/sqlite/replication.js';
import { SqliteArchive } from './engines/sqlite/archive.js';
import { LocalStorage } from './storage/local-storage.js';
import type { SqliteWatch } from './engines/sqlite.js';
import { answerPrimary, type PrimaryAnswer } from './failover/primary-answer.js';
import { FailoverProcedure, type FailoverRequest } from './failover/procedure.js';
import { fenceResurrected } from './failover/resurrected.js';
import { copyPlan } from './ha/copy-plan.js';
import type { AcceptedFile } from './ha/intent-actions.js';
import { processName, type ActingDeps } from './ha/intents.js';
import { LeaderTasks, type LeaderTask } from './ha/leader-tasks.js';
import { HaLoop } from './ha/loop.js';
import { ClusterRequests } from './ha/requests.js';
import type { Logger } from './log.js';
import { registerBackupMetrics } from './metrics/backup-metrics.js';
import { registerReplicationMetrics } from './metrics/replication-metrics.js';
import { Metrics } from './metrics/registry.js';
import { Monitor } from './monitor/monitor.js';
import { SilentNotifier, WebhookNotifier, type Notifier } from './notifications/notifier.js';
import { openStateStore, type StoreOpening } from './state/open-store.js';
import { StateCopy } from './state/state-copy.js';
import type { AlertRecord, ClusterState, FailoverRecord, StateStore, StateWatch } from './state/store.js';
import {
  clusterStatus,
  databaseStatuses,
  downPrimaryHold,
  lastBackupStatus,
  leaseStatus,
  memberStatuses,
  statusReport,
  type ClusterStatus,
  type DatabaseStatus,
  type LastBackupStatus,
  type StatusReport,
} from './status.js';

/** The leader lease of a SQLite state store (one host), when the config gives no state.etcd.ttl. */
const DEFAULT_LEASE_TTL_SECONDS = 10;
/** How long a leader may take to carry out a claimed failover or backup before its submitter gives up waiting. */
const INTENT_FINISH_WAIT_MS = 10 * 60_000;
let instances = 0;

/** The lease's TTL: state.etcd.ttl, or the SQLite store's default. */
export function leaseTtlMs(config: Config): number {
  const etcd = config.state.backend === 'etcd' ? config.state.etcd : undefined;
  return (etcd?.ttl ?? DEFAULT_LEASE_TTL_SECONDS) * 1000;
}

/** The probing parts: engines (with the SQLite files' identities and integrity checks) and the monitor. */
export interface Probing {
  engines: Engines;
  monitor: Monitor;
  sqliteIdentities: SqliteIdentities;
  integrity: SqliteIntegrityChecks;
  sqliteWatch: SqliteWatch;
}

/** Engines and monitor for the enabled databases; `interval` says how often each is probed. */
export function buildProbing(config: Config, log: Logger, store: StateStore, interval: (name: string) => number = () => config.monitoring.check_interval): Probing {
  const sqliteIdentities = new SqliteIdentities(store, log);
  const integrity = new SqliteIntegrityChecks(config.monitoring.integrity_check_interval, log);
  const sqliteWatch: SqliteWatch = { identities: sqliteIdentities, integrity };
  const engines = new Engines(config.topology.enabled(), (text) => scrubSecrets(text, config.secrets), sqliteWatch);
  const monitor = new Monitor(
    engines.all(),
    { intervalSeconds: interval, timeoutSeconds: config.monitoring.probe_timeout, historyRetentionHours: config.monitoring.history_retention_hours },
    log,
  );
  return { engines, monitor, sqliteIdentities, integrity, sqliteWatch };
}

/** The backups, their offsite copies and the point-in-time restores built on both. */
export interface BackupParts {
  backups: Backups;
  offsite: OffsiteCopies;
  pointInTime: PointInTimeRestores;
}

/** The backups of the configured databases (a restore rebaselines the SQLite file it replaces), their offsite copies, point-in-time restores. */
export function buildBackupParts(config: Config, log: Logger, currentPrimary: () => string | undefined, identities?: SqliteIdentities): BackupParts {
  const destinations = openOffsiteStorages(config);
  const offsite = new OffsiteCopies(config, log, destinations);
  const backups = buildBackups(config, log, currentPrimary, destinations, identities);
  return { backups, offsite, pointInTime: new PointInTimeRestores(backups, destinations) };
}

function buildBackups(config: Config, log: Logger, currentPrimary: () => string | undefined, offsite: ReturnType<typeof openOffsiteStorages>, identities?: SqliteIdentities): Backups {
  return new Backups({
    config,
    log,
    offsite,
    currentPrimary,
    scrub: (text) => scrubSecrets(text, config.secrets),
    // A restore is the sidecar's own replacement of a file: what it leaves is the new baseline.
    restoring: identities && {
      begin: (db) => (db.target.engine === 'sqlite' ? identities.beginReplace(db.name, db.target.file) : Promise.resolve()),
      end: async (db, restored) => {
        if (db.target.engine !== 'sqlite') return;
        if (restored) await identities.rebaseline(db.name, db.target.file, 'restore');
        else await identities.cancelReplace(db.name, db.target.file);
      },
    },
  });
}

function buildNotifier(config: Config, log: Logger): Notifier {
  const webhooks = config.notifications.webhooks;
  return config.failover.notification_enabled && webhooks.length > 0
    ? new WebhookNotifier({ urls: webhooks, timeoutMs: config.notifications.timeout * 1000, attempts: 3, backoffMs: 1000 }, log)
    : new SilentNotifier();
}

/**
 * What a command that only looks needs (`status`, `test`): the state, one round
 * of probes, the backup catalogue, the lease and members read once. No HA loop,
 * no metrics, no failover procedure, no replication.
 */
export class Inspection {
  private constructor(
    readonly config: Config,
    private readonly store: StateStore,
    private readonly state: StateCopy,
    private readonly probing: Probing,
    private readonly backups: BackupParts,
  ) {}

  static async open(config: Config, log: Logger, opening: StoreOpening): Promise<Inspection> {
    const store = openStateStore(config.state, opening);
    try {
      const state = new StateCopy(config, store, log, () => false);
      await state.refresh();
      const probing = buildProbing(config, log, store);
      return new Inspection(config, store, state, probing, buildBackupParts(config, log, () => state.primary()));
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** Probes every enabled database once, concurrently, and reports each. */
  async test(): Promise<DatabaseStatus[]> {
    await this.probing.monitor.probeAll();
    return this.databaseStatuses().filter((d) => d.enabled);
  }

  /** Probes, reads the lease and members, and reports as the running sidecar's status does. */
  async status(): Promise<StatusReport> {
    const [, lease, members] = await Promise.all([this.probing.monitor.probeAll(), this.store.leaseHolder(), this.store.members()]);
    const { config, state } = this;
    const primary = state.primary();
    const held = state.problem ?? downPrimaryHold({ primary, health: primary ? this.probing.monitor.health(primary) : undefined, autoFailover: state.autoFailover(), follower: false, leader: () => null });
    const newest = this.backups.backups.lastBackup();
    const report = statusReport(
      config,
      this.databaseStatuses(),
      state.current(),
      { enabled: state.autoFailover(), source: state.current().autoFailover === undefined ? 'config' : 'operator', held },
      newest ? lastBackupStatus(newest) : null,
      { path: this.store.location ?? config.state.path, problem: state.problem ?? null },
      clusterStatus({ backend: config.state.backend, member: null, isLeader: false, lease: leaseStatus(lease, leaseTtlMs(config) / 1000), members: memberStatuses(members), cutOff: null }),
      this.backups.offsite.status(),
    );
    // A command computes the window afresh (the running sidecar answers from its cache).
    if (!config.backup.archive.enabled) return report;
    const at = new Date();
    return { ...report, restore_windows: (await this.restoreWindows()).map((w) => restoreWindowStatus(w, at)) };
  }

  /** The window of a point-in-time restore, per database. */
  restoreWindows(database?: string): Promise<RestoreWindow[]> {
    return this.backups.pointInTime.windows(database);
  }

  async close(): Promise<void> {
    await this.probing.monitor.stop();
    await this.probing.engines.close();
    await this.store.close();
  }

  private databaseStatuses(): DatabaseStatus[] {
    return databaseStatuses(this.config, this.state.current(), this.state.primary(), {
      health: (name) => this.probing.monitor.health(name),
      history: (name) => this.probing.monitor.history(name),
      // A command copies nothing: no lag of its own to report.
      copyLagSeconds: () => undefined,
    });
  }
}

/**
 * One sidecar: what `start-monitoring` runs, and what the CLI's acting commands,
 * the HTTP server and the library call. Exported as DisasterRecoveryService too (the library's name).
 */
export class Sidecar {
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
  readonly pointInTime: PointInTimeRestores;
  /** The restore windows status reports, computed in the background (see RestoreWindowCache). */
  private readonly windowCache: RestoreWindowCache;
  readonly sqliteIdentities: SqliteIdentities;
  private readonly pgArchiving: PostgresArchiving;
  readonly drills: Drills;
  /** What changes the cluster: run here when this process leads, else handed to the leader. */
  readonly requests: ClusterRequests;
  /** This sidecar's name among the members, and the lease's holder (unique per process and instance). */
  readonly member: string;
  private readonly integrity: SqliteIntegrityChecks;
  private readonly state: StateCopy;
  private readonly unrecordedAttempts = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly ha: HaLoop;
  /**
   * Work only the leader does, started when this sidecar leads and stopped when it no longer
   * does (and at stop). Add leader-only components here: `{ name, start(), stop() }`.
   */
  private readonly leaderTasks: LeaderTasks;
  private watch: StateWatch | undefined;
  /** The leader and members as a command (not the running sidecar) last read them. */
  private readCluster: { lease: ClusterStatus['lease']; members: ClusterStatus['members'] } | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly store: StateStore = openStateStore(config.state, 'require'),
  ) {
    const enabled = config.topology.enabled();
    const running = () => this.started;
    this.state = new StateCopy(config, store, log, running);
    const probing = buildProbing(config, log, store, (name) => this.probeInterval(name));
    ({ engines: this.engines, monitor: this.monitor, sqliteIdentities: this.sqliteIdentities, integrity: this.integrity } = probing);
    this.notifier = buildNotifier(config, log);
    this.archive = new SqliteArchive(
      {
        enabled: config.backup.archive.enabled,
        root: config.backup.backup_dir,
        snapshotIntervalSeconds: config.backup.archive.snapshot_interval,
        retentionDays: config.backup.retention_days,
        databases: enabled.filter((d) => d.target.engine === 'sqlite').map((d) => d.name),
      },
      new LocalStorage(config.backup.backup_dir),
      log,
    );
    this.copies = new SqliteReplication(
      this.engines,
      { intervalSeconds: config.failover.sync_interval },
      () =>
        copyPlan({
          store,
          state: this.state,
          running: this.started,
          hasSqlite: enabled.some((d) => d.target.engine === 'sqlite'),
          primaryUp: (name) => this.monitor.health(name)?.status === 'up',
          failoverUnderWay: () => this.requests.failoverUnderWay(),
          isLeader: () => this.ha.isLeader(),
          ownLeadership: () => this.ha.leadership(),
        }),
      log,
      this.archive,
    );
    probing.sqliteWatch.replication = this.copies;
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
    ({ backups: this.backups, offsite: this.offsite, pointInTime: this.pointInTime } = buildBackupParts(config, log, () => this.currentPrimary(), this.sqliteIdentities));
    registerBackupMetrics(this.metrics.registry, this.backups);
    this.windowCache = new RestoreWindowCache(() => this.pointInTime.windows(), log);
    // After a hole in the archive or a failover, a base backup at once: the window resumes without waiting for the schedule.
    this.pgArchiving = PostgresArchiving.fromConfig(config, () => this.currentPrimary(), log, (database, why) => void this.backups.create({ database, name: why, trigger: 'archive' }).catch(() => undefined));
    // One set of archive metrics, both engines' archivers reporting.
    registerArchiveMetrics(this.metrics.registry, { archiverReports: () => [...this.pgArchiving.archiverReports(), ...this.archive.archiverReports()] });
    registerOffsiteMetrics(this.metrics.registry, this.offsite);
    this.backups.onOutcome(() => this.offsite.wake());
    registerReplicationMetrics(this.metrics.registry, enabled.filter((d) => d.target.engine === 'sqlite').map((d) => d.name), this.copies.totals);
    const procedure = new FailoverProcedure({
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
    this.requests = new ClusterRequests({
      config,
      store,
      log,
      state: this.state,
      procedure,
      backups: this.backups,
      identities: this.sqliteIdentities,
      drill: (request, leadership) => this.drills.run(request, leadership),
      acting: () => this.acting(),
      running,
    });
    this.drills = createDrills({
      config,
      log,
      store,
      notifier: this.notifier,
      engines: this.engines,
      monitor: this.monitor,
      backups: this.backups,
      pointInTime: this.pointInTime,
      currentPrimary: async () => (await this.refreshState(), this.currentPrimary()),
      autoFailoverEnabled: () => this.autoFailoverEnabled(),
      failoverUnderWay: () => this.requests.failoverUnderWay(),
      copyLagSeconds: (name) => this.copyLagSeconds(name),
      runFailover: (request, leadership) => this.requests.runFailover(request, leadership),
      leadership: () => this.ha.leadership(),
    });
    registerDrillMetrics(this.metrics.registry, this.drills);
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
        lastAutoFailoverAt: this.state.current().lastAutoFailoverAt,
        cooldownSeconds: config.failover.cooldown,
        now: Date.now(),
        failoverUnderWay: this.requests.failoverUnderWay(),
      }),
      failover: (database, reason) => this.requests.alertFailover(database, reason),
      backup: (database, reason) => this.requests.alertBackup(database, reason),
    });
    this.leaderTasks = new LeaderTasks(this.leaderOnly());
    const etcd = config.state.backend === 'etcd' ? config.state.etcd : undefined;
    this.member = etcd?.member ?? `${os.hostname()}:${config.server.port}`;
    this.ttlMs = leaseTtlMs(config);
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
      state: () => this.state.current(),
      currentPrimary: () => this.currentPrimary(),
      autoFailoverEnabled: () => this.autoFailoverEnabled(),
      storeProblem: () => this.state.problem,
      healths: () => enabled.map((d) => this.monitor.health(d.name)!),
      lagSeconds: (name) => this.copyLagSeconds(name),
      failoverUnderWay: () => this.requests.failoverUnderWay(),
      runFailover: (request, leadership) => this.requests.runFailover(request, leadership),
      fenceResurrected: (name) => fenceResurrected(name, this.engines.get(name)!, config.monitoring.probe_timeout * 1000, log),
      execute: (kind, params, leadership) => this.requests.execute(kind, params, leadership),
      onLeadership: (leading) => this.leaderTasks.follow(leading),
    });
    this.monitor.on('probe', (health, previous) => this.ha.onProbe(health, previous));
  }

  /** The leader-only components (periodic copies check the leadership themselves). */
  private leaderOnly(): LeaderTask[] {
    return [
      { name: 'backup schedule', start: () => this.backups.startSchedule(), stop: () => this.backups.stop() },
      { name: 'PostgreSQL WAL archiving', start: () => this.pgArchiving.start(), stop: () => this.pgArchiving.stop() },
      { name: 'SQLite archiving', start: () => this.archive.start(), stop: () => this.archive.stop() },
      { name: 'offsite copies', start: () => this.offsite.start(), stop: () => this.offsite.stop() },
      { name: 'drill schedule', start: () => this.drills.startSchedule(), stop: () => this.drills.stop() },
    ];
  }

  /** A sidecar on the config's state store, with the state read; only start-monitoring passes `create`. */
  static async open(config: Config, log: Logger, opening: StoreOpening = 'require'): Promise<Sidecar> {
    const store = openStateStore(config.state, opening, (file) => log.warn({ state: file }, `disaster-recovery: created the state store ${file}`));
    let sidecar: Sidecar;
    try {
      sidecar = new Sidecar(config, log, store);
      await sidecar.refreshState();
    } catch (error) {
      await store.close();
      throw error;
    }
    return sidecar;
  }

  /** A submitter waits this long for a leader to claim its intent: a lease's TTL (a dead leader replaced) and some. */
  private intentClaimWaitMs(): number {
    return this.ttlMs + 5000;
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

  /** The database writes go to now. */
  currentPrimary(): string | undefined {
    return this.state.primary();
  }

  autoFailoverEnabled(): boolean {
    return this.state.autoFailover();
  }

  clusterState(): ClusterState {
    return this.state.current();
  }

  /** Re-reads the shared state: another process (the CLI, a second sidecar) may have switched. */
  refreshState(): Promise<ClusterState> {
    return this.state.refresh();
  }

  private async failoverCounts(): Promise<Array<{ trigger: string; result: string; count: number }>> {
    const counts: Array<{ trigger: string; result: string; count: number }> = await this.store.historyCounts();
    for (const [key, count] of this.unrecordedAttempts) {
      const [trigger, result] = key.split('|') as [string, string];
      counts.push({ trigger, result, count });
    }
    return counts;
  }

  /** The current primary as `GET /primary` answers it (the running sidecar from its watched copy). */
  primaryRoute(): Promise<PrimaryAnswer> {
    return answerPrimary({
      config: this.config,
      state: this.state,
      running: this.started,
      unconfirmed: this.ha.unconfirmed() ?? this.state.problem,
      health: (name) => this.monitor.health(name),
      probeNow: (name) => this.monitor.probeNow(name),
    });
  }

  /** Probes every enabled database once, concurrently, and reports each. */
  async test(): Promise<DatabaseStatus[]> {
    await this.monitor.probeAll();
    return this.databaseStatuses().filter((d) => d.enabled);
  }

  status(): StatusReport {
    const state = this.state.current();
    const primary = this.currentPrimary();
    const held =
      this.state.problem ??
      this.ha.cutOff() ??
      this.ha.heldWhy(primary) ??
      downPrimaryHold({
        primary,
        health: primary ? this.monitor.health(primary) : undefined,
        autoFailover: this.autoFailoverEnabled(),
        follower: this.started && !this.ha.isLeader(),
        leader: () => this.cluster().leader,
      });
    const report = statusReport(
      this.config,
      this.databaseStatuses(),
      state,
      { enabled: this.autoFailoverEnabled(), source: state.autoFailover === undefined ? 'config' : 'operator', held },
      this.lastBackup(),
      { path: this.store.location ?? this.config.state.path, problem: this.state.problem ?? null },
      this.cluster(),
      this.offsite.status(),
    );
    return this.config.backup.archive.enabled ? { ...report, restore_windows: this.windowCache.current() } : report;
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

  /** The leader, the members and the lease: the running sidecar's own knowledge, else what refreshCluster read. */
  cluster(): ClusterStatus {
    const ttlSeconds = this.ttlMs / 1000;
    return clusterStatus({
      backend: this.config.state.backend,
      member: this.started ? this.member : null,
      isLeader: this.started && this.ha.isLeader(),
      lease: this.started ? leaseStatus(this.ha.lease(), ttlSeconds) : (this.readCluster?.lease ?? null),
      members: this.started ? memberStatuses(this.ha.members()) : (this.readCluster?.members ?? []),
      cutOff: this.started ? (this.ha.cutOff() ?? null) : null,
    });
  }

  /** For a command: reads the lease and the members once (the running sidecar keeps its own). */
  async refreshCluster(): Promise<void> {
    const [lease, members] = await Promise.all([this.store.leaseHolder(), this.store.members()]);
    this.readCluster = { lease: leaseStatus(lease, this.ttlMs / 1000), members: memberStatuses(members) };
  }

  /** The newest good backup of any enabled database, from the backup catalogue. */
  lastBackup(): LastBackupStatus | null {
    const newest = this.backups.lastBackup();
    return newest ? lastBackupStatus(newest) : null;
  }

  /** Manual failover/switchover (target given) or a choice by priority (alerts): see ha/requests.ts. */
  failover(request: FailoverRequest): Promise<FailoverRecord> {
    return this.requests.failover(request);
  }

  /** A backup on request (CLI, API, webhook, library): taken by the leader. */
  backup(options: CreateBackupOptions): Promise<BackupRecord> {
    return this.requests.backup(options);
  }

  setAutoFailover(enabled: boolean): Promise<void> {
    return this.requests.setAutoFailover(enabled);
  }

  /** An operator's word that a demoted former primary may be chosen automatically again. */
  reinstate(name: string): Promise<void> {
    return this.requests.reinstate(name);
  }

  /** An operator's word that the SQLite file now at `name`'s path is its data: see ha/requests.ts. */
  acceptFile(name: string): Promise<AcceptedFile> {
    return this.requests.acceptFile(name);
  }

  /** Drills on request (CLI, API): run by the leader, each a history entry of trigger drill. */
  drill(request: DrillRequest): Promise<FailoverRecord[]> {
    return this.requests.drill(request);
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
      (state) => this.state.set(state),
      (error) => this.ha.storeFailed(error),
    );
    this.integrity.start();
    this.monitor.start();
    this.copies.start();
    // Campaigns at once: a lone sidecar leads from its first moment (and then starts the leader tasks).
    await this.ha.start();
    // A store kept in a file is also checked (and written back) every second; etcd's watch needs no polling.
    if (this.store.checkLocation) this.refreshTimer = setInterval(() => void this.refreshState().catch((e) => this.ha.storeFailed(e as Error)), 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.watch?.stop();
    await this.ha.stop();
    await this.leaderTasks.stop();
    await this.windowCache.settle();
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
    return this.copies.lagSeconds(name, this.state.current().epoch);
  }

  private probeInterval(name: string): number {
    const { check_interval } = this.config.monitoring;
    if (name !== this.currentPrimary() || !this.autoFailoverEnabled()) return check_interval;
    return Math.min(check_interval, this.config.failover.health_check_interval);
  }

  private databaseStatuses(): DatabaseStatus[] {
    return databaseStatuses(this.config, this.state.current(), this.currentPrimary(), {
      health: (name) => this.monitor.health(name),
      history: (name) => this.monitor.history(name),
      copyLagSeconds: (name) => this.copyLagSeconds(name),
    });
  }
}

/** The library's name for a sidecar (src/index.ts). */
export { Sidecar as DisasterRecoveryService };
