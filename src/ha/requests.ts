/**
 * What changes the cluster, as the CLI, the HTTP API, the webhook and the
 * library ask for it: each request runs here when this process leads (or
 * nobody does, for the moment of it), else is handed to the leader as an
 * intent (see intents.ts). The leader carries out intents with the same actions.
 */
import { ActionSuppressed } from '../alerting/receiver.js';
import type { Backups, BackupRecord, CreateOptions as CreateBackupOptions } from '../backup/backups.js';
import type { Config } from '../config/load.js';
import type { DrillRequest } from '../drill/drills.js';
import fs from 'node:fs';
import type { SqliteIdentities } from '../engines/sqlite-identities.js';
import { ConflictError, InputError } from '../errors.js';
import { FailoverFailed, type FailoverProcedure, type FailoverRequest } from '../failover/procedure.js';
import type { Logger } from '../log.js';
import type { Leadership } from '../state/leadership.js';
import type { StateCopy } from '../state/state-copy.js';
import type { FailoverRecord, IntentOutcome, StateStore } from '../state/store.js';
import { carryOutIntent, type AcceptedFile } from './intent-actions.js';
import type { IntentKind } from './intent-admission.js';
import { actAsLeader, NoLeaderAnswered, type ActingDeps } from './intents.js';

export interface RequestsDeps {
  config: Config;
  store: StateStore;
  log: Logger;
  state: StateCopy;
  procedure: FailoverProcedure;
  backups: Backups;
  identities: SqliteIdentities;
  /** Runs drills under a leadership (drill/). */
  drill(request: DrillRequest, leadership: Leadership): Promise<FailoverRecord[]>;
  /** How to act as the leader now (this process's leadership, a transient one, or an intent). */
  acting(): ActingDeps;
  /** A running sidecar keeps its copy by the watch; a command reads the state around what it does. */
  running(): boolean;
}

export class ClusterRequests {
  private underWay = false;

  constructor(private readonly deps: RequestsDeps) {}

  /** A failover of this process's runs now (the monitor's, an alert's, an operator's). */
  failoverUnderWay(): boolean {
    return this.underWay;
  }

  /** Manual failover/switchover (target given) or a choice by priority (alerts), with the epoch it was asked in. */
  async failover(request: FailoverRequest): Promise<FailoverRecord> {
    const { state } = this.deps;
    if (state.problem) throw new ConflictError(`no failover while the state store cannot be trusted: ${state.problem}`);
    if (!this.deps.running()) await state.refresh();
    const { trigger, reason, target, expectedFrom, ifPrimaryAnswers } = request;
    const params = { trigger, reason, target, expectedFrom, ifPrimaryAnswers, expectedEpoch: request.expectedEpoch ?? state.current().epoch };
    try {
      return await actAsLeader(this.deps.acting(), 'failover', params, (leadership) => this.runFailover(request, leadership));
    } catch (error) {
      // An operator's attempt is history, also when no leader took it.
      if (error instanceof NoLeaderAnswered && trigger === 'manual') await this.recordUntaken(request, error.message);
      throw error;
    } finally {
      if (!this.deps.running()) await state.refresh();
    }
  }

  /** A backup on request (CLI, API, webhook, library): taken by the leader. */
  backup(options: CreateBackupOptions): Promise<BackupRecord> {
    const { database, name, trigger } = options;
    return actAsLeader(this.deps.acting(), 'backup', { database, name, trigger }, () => this.deps.backups.create(options));
  }

  async setAutoFailover(enabled: boolean): Promise<void> {
    await actAsLeader(this.deps.acting(), 'auto_failover', { enabled }, () => this.applyAutoFailover(enabled));
    await this.deps.state.refresh();
  }

  /** An operator's word that a demoted former primary may be chosen automatically again. */
  async reinstate(name: string): Promise<void> {
    const db = this.deps.config.topology.require(name);
    if (!db.enabled) throw new InputError(`${name} is disabled in the config (enabled: false), so it is never a candidate; enable it there first`);
    await actAsLeader(this.deps.acting(), 'reinstate', { name }, () => this.applyReinstate(name));
    await this.deps.state.refresh();
  }

  /**
   * An operator's word that the SQLite file now at `name`'s path is its data (replaced on purpose):
   * the leader makes it the baseline every sidecar judges the file against.
   */
  acceptFile(name: string): Promise<AcceptedFile> {
    const db = this.deps.config.topology.require(name);
    if (db.target.engine !== 'sqlite') throw new InputError(`database "${name}" is ${db.target.engine}: accept-file is for SQLite files`);
    return actAsLeader(this.deps.acting(), 'accept_file', { name }, () => this.applyAcceptFile(name));
  }

  /** Drills on request (CLI, API): run by the leader, each a history entry of trigger drill. */
  drill(request: DrillRequest): Promise<FailoverRecord[]> {
    const params = { kinds: request.kinds ?? ['switchover', 'restore'], ...(request.database ? { database: request.database } : {}) };
    return actAsLeader(this.deps.acting(), 'drill', params, (leadership) => this.deps.drill(request, leadership));
  }

  /** The leader carries out an intent another process recorded. */
  execute(kind: IntentKind, params: Record<string, unknown>, leadership: Leadership): Promise<IntentOutcome> {
    return carryOutIntent(kind, params, leadership, {
      failover: (request, l) => this.runFailover(request, l),
      autoFailover: (enabled) => this.applyAutoFailover(enabled),
      reinstate: (name) => this.applyReinstate(name),
      backup: (options) => this.deps.backups.create(options),
      acceptFile: (name) => this.applyAcceptFile(name),
      drill: (request, l) => this.deps.drill(request, l),
    });
  }

  /** The failover itself, under `leadership` (this sidecar's, or a command's for the moment). */
  async runFailover(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord> {
    const { state, procedure, log } = this.deps;
    if (state.problem) throw new ConflictError(`no failover while the state store cannot be trusted: ${state.problem}`);
    this.underWay = true;
    try {
      return await procedure.run(request, leadership);
    } finally {
      this.underWay = procedure.running;
      await state.refresh().catch((error) => log.error({ err: error }, 'disaster-recovery: the state could not be read after a failover'));
    }
  }

  /**
   * An admitted failover alert: a primary that still answers (a critically
   * slow one) is replaced by a lossless switchover, a dead one by a failover.
   */
  async alertFailover(database: string, reason: string): Promise<string> {
    // Admitted moments ago, but the action runs after the delivery was answered: the monitor's failover may have begun since.
    if (this.underWay) throw new ActionSuppressed('a failover is already under way');
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

  async alertBackup(database: string | null, reason: string): Promise<string> {
    const made = await this.backup({ ...(database ? { database } : {}), name: 'alert', trigger: 'alert' });
    return `backup ${made.file} of ${made.database} (${reason})`;
  }

  private async recordUntaken(request: FailoverRequest, why: string): Promise<void> {
    const now = new Date().toISOString();
    await this.deps.store.appendHistory({
      epoch: null,
      startedAt: now,
      finishedAt: now,
      from: this.deps.state.primary() ?? null,
      to: request.target ?? null,
      trigger: request.trigger,
      reason: request.reason,
      result: 'refused',
      error: why,
      dataSync: null,
      phases: {},
    });
  }

  private async applyAutoFailover(enabled: boolean): Promise<void> {
    await this.deps.store.setAutoFailover(enabled);
    await this.deps.state.refresh();
    this.deps.log.warn({ enabled }, `disaster-recovery: automatic failover ${enabled ? 'enabled' : 'disabled'} by an operator`);
  }

  private async applyAcceptFile(name: string): Promise<AcceptedFile> {
    const { config, identities, log } = this.deps;
    const db = config.topology.require(name);
    if (db.target.engine !== 'sqlite') throw new InputError(`database "${name}" is ${db.target.engine}: accept-file is for SQLite files`);
    const file = db.target.file;
    if (!fs.existsSync(file)) throw new ConflictError(`${file} does not exist: there is no file of ${name} to accept`);
    const before = await identities.recorded(name, file);
    const after = await identities.rebaseline(name, file, 'accepted');
    if (!after) throw new ConflictError(`${file} is not a SQLite database that can be read: nothing accepted`);
    log.warn({ database: name, file, identity: after.identity }, `disaster-recovery identity: the file of ${name} was accepted by an operator as its data (${file})`);
    return { before, after };
  }

  private async applyReinstate(name: string): Promise<void> {
    const { state, store, log } = this.deps;
    await state.refresh();
    if (name === state.primary()) {
      throw new ConflictError(`${name} is the current primary; reinstate is for a demoted former primary (see status), nothing changed`);
    }
    await store.reinstate(name);
    await state.refresh();
    log.warn({ database: name }, `disaster-recovery failover: ${name} reinstated as a candidate`);
  }
}
