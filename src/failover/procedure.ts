import { spawn } from 'node:child_process';
import type { Config } from '../config/load.js';
import type { DataSyncOutcome, Engine, Fence } from '../engines/engine.js';
import type { Engines } from '../engines/index.js';
import { ConflictError, DrError, InputError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Notifier } from '../notifications/notifier.js';
import { LeadershipLost, type Leadership } from '../state/leadership.js';
import type { ClusterState, FailoverRecord, FailoverResult, FailoverTrigger, StateStore } from '../state/store.js';
import { inSpan } from '../telemetry/tracing.js';
import { chooseCandidate, describeRejections, type CandidateInput } from './candidates.js';
import { failoverRecordJson } from './history.js';
import { formerPrimaryFate, formerPrimaryNote, type FormerPrimaryInput } from './former-primary.js';
import { primaryOf } from './primary.js';

export interface FailoverRequest {
  trigger: FailoverTrigger;
  reason: string;
  /** The database to switch to (manual); chosen by priority when absent. */
  target?: string | undefined;
  /** Milliseconds from the first failed probe to the decision (automatic failovers). */
  detectMs?: number | undefined;
  /** Only fail over away from this database: an alert about a primary already replaced is a no-op. */
  expectedFrom?: string | undefined;
  /**
   * What to do when the primary still answers: replace it by a lossless
   * switchover (fence, catch up, promote; an operator, or an alert that asks
   * for it), or call the failover off (the monitor, which acts only on a dead primary).
   */
  ifPrimaryAnswers: 'switch over' | 'call off';
  /**
   * The epoch the asker saw: a request made before the cluster switched is refused
   * (two operators asking at once: one runs, the other is told the primary changed).
   */
  expectedEpoch?: number | undefined;
}

export interface FailoverDeps {
  config: Config;
  engines: Engines;
  store: StateStore;
  notifier: Notifier;
  log: Logger;
  /** Epoch ms up to which a SQLite secondary holds every commit of the primary (its last copy, or its last WAL apply). */
  lastCopyAt(name: string): number | undefined;
  /** What the old primary committed that `to` does not hold and could not be given (SQLite WAL shipping), in words. */
  unshipped?(from: string, to: string): Promise<string | undefined>;
  /** An attempt that is not written to the history (a monitor or alert losing the lease race). */
  countedUnrecorded(trigger: FailoverTrigger, result: FailoverResult): void;
}

/** Most a failover waits on one step of a database it does not switch over (see stepTimeoutMs). */
const STEP_TIMEOUT_SECONDS = 5;

/**
 * The bound of a failover's own waits: probing candidates, the last look at a
 * primary counted dead, the dead primary's fence, catch-up and promotion.
 * probe_timeout, but at most 5 s: the default probe_timeout grows to leave
 * room above the response_time alert thresholds (15 s for the guide's rules),
 * and that must not make a failover wait three times as long on a hung server.
 * Only a run that may switch over a primary that still answers gives that
 * primary probe_timeout itself: a slow one must be fenced, not given up on.
 */
export function stepTimeoutMs(config: Config): number {
  return Math.min(config.monitoring.probe_timeout, STEP_TIMEOUT_SECONDS) * 1000;
}

/** A failover refused or failed after it started: the record says what happened. */
export class FailoverFailed extends ConflictError {
  constructor(
    message: string,
    readonly record: FailoverRecord,
  ) {
    super(message);
  }
}

/**
 * One failover or switchover, from choice to notification: choose, fence the
 * old primary, bring the target up to date, promote, record the switch, point
 * the other standbys at it. Every attempt lands in the history.
 *
 * It runs only under the cluster's leadership (the sidecar's, or a command's
 * taken for its duration): the lease is what keeps two processes from switching
 * at once, and it is checked right before every irreversible step (fence,
 * promote, commit), so a leadership lost half-way stops the run there.
 */
export class FailoverProcedure {
  /** The run under way in this process (one leader, but the monitor, an alert and an intent may ask at once). */
  private underWay: string | undefined;

  constructor(private readonly deps: FailoverDeps) {}

  get running(): boolean {
    return this.underWay !== undefined;
  }

  run(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord> {
    return inSpan('failover', { 'dr.trigger': request.trigger, 'dr.target': request.target ?? '' }, async (span) => {
      const record = await this.attempt(request, leadership);
      span.setAttributes({ 'dr.from': record.from ?? '', 'dr.to': record.to ?? '', 'dr.result': record.result, 'dr.epoch': record.epoch ?? -1 });
      return record;
    });
  }

  private async attempt(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord> {
    const { store, log } = this.deps;
    const startedAt = new Date();
    const phases: FailoverRecord['phases'] = {};
    if (request.detectMs !== undefined) phases.detect = Math.round(request.detectMs);
    const record = (partial: Partial<FailoverRecord> & { result: FailoverResult }): FailoverRecord => ({
      epoch: null,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      from: null,
      to: null,
      trigger: request.trigger,
      reason: request.reason,
      error: null,
      dataSync: null,
      phases,
      ...partial,
    });

    const refuse = async (why: string): Promise<never> => {
      // An operator's attempt is history; a monitor or alert racing the failover under way is not.
      if (request.trigger === 'manual') {
        const from = primaryOf(await store.read(), this.deps.config) ?? null;
        await this.finish(record({ from, to: request.target ?? null, result: 'refused', error: why }));
      } else this.deps.countedUnrecorded(request.trigger, 'refused');
      throw new ConflictError(why);
    };
    if (this.underWay) return refuse(`another failover is in progress (${this.underWay}); nothing changed`);
    if (!leadership.stillLeader()) return refuse(`this process does not hold the leadership (${leadership.holder}); nothing changed`);
    this.underWay = `${request.trigger}${request.target ? ` to ${request.target}` : ''}, by ${leadership.holder}, since ${startedAt.toISOString()}`;
    try {
      const state = await store.read();
      if (request.expectedEpoch !== undefined && state.epoch !== request.expectedEpoch) {
        const now = primaryOf(state, this.deps.config);
        this.underWay = undefined;
        return await refuse(`the primary changed since this was asked (epoch ${request.expectedEpoch} -> ${state.epoch}, primary ${now ?? 'none'}); nothing changed`);
      }
      const from = primaryOf(state, this.deps.config);
      if (request.expectedFrom !== undefined && from !== request.expectedFrom) {
        throw new ConflictError(`${request.expectedFrom} is no longer the primary (${from ?? 'none'} is); nothing to do`);
      }
      const base = { from: from ?? null };
      const t = performance.now();
      const target = await inSpan('failover.choose', { 'dr.from': from ?? '' }, () =>
        request.target ? this.validateTarget(request.target, from) : this.choose(from, state),
      );
      phases.choose = Math.round(performance.now() - t);
      if (typeof target !== 'string') {
        const why = `no eligible secondary: ${target.why}`;
        log.fatal({ from, reason: request.reason }, `disaster-recovery failover impossible: ${why}`);
        return await this.finish(record({ ...base, result: 'no_candidate', error: why }));
      }
      const attempt = { ...base, to: target };
      try {
        return await this.switchTo(from, target, state, request, leadership, phases, (p) => record({ ...attempt, ...p }));
      } catch (error) {
        if (error instanceof FailoverFailed) throw error;
        const failed = await this.finish(record({ ...attempt, result: error instanceof ConflictError ? 'refused' : 'failed', error: (error as Error).message }));
        throw new FailoverFailed(`failover to ${target} ${failed.result}: ${(error as Error).message}`, failed);
      }
    } finally {
      this.underWay = undefined;
    }
  }

  private async switchTo(
    from: string | undefined,
    to: string,
    state: ClusterState,
    request: FailoverRequest,
    leadership: Leadership,
    phases: FailoverRecord['phases'],
    record: (p: Partial<FailoverRecord> & { result: FailoverResult }) => FailoverRecord,
  ): Promise<FailoverRecord> {
    const { engines, config, store, log } = this.deps;
    const timeoutMs = stepTimeoutMs(config);
    const switchover = request.ifPrimaryAnswers === 'switch over';
    const targetEngine = engines.get(to)!;
    const fromEngine = from ? engines.get(from) : undefined;
    log.warn({ from, to, trigger: request.trigger, reason: request.reason }, `disaster-recovery failover started: ${from ?? 'none'} -> ${to}`);

    let t = performance.now();
    // A primary that may be switched over gets the whole probe_timeout to answer: a slow one is still alive and must be fenced.
    const fromProbe = fromEngine ? await fromEngine.probe(switchover ? config.monitoring.probe_timeout * 1000 : timeoutMs) : undefined;
    const fromUp = fromProbe?.up ?? false;
    if (!switchover && fromUp) throw new ConflictError(`primary ${from} answers again; failover called off`);
    // A role that could fence the old primary but not promote the target would leave neither writable.
    await targetEngine.checkPromotable?.(timeoutMs);
    // A primary that just timed out would only make the fence wait out its timeout too.
    const hung = fromProbe !== undefined && !fromProbe.up && /timed out/.test(fromProbe.error ?? '');
    // A primary that lost its data, or whose pages are damaged, has nothing to give: no fence, no final copy over the target.
    const ruined = fromProbe?.lost !== undefined ? `lost its data (${fromProbe.lost})` : fromProbe?.damaged !== undefined ? `is damaged (${fromProbe.damaged})` : undefined;
    stillLeading(leadership, `fence ${from ?? 'the primary'}`);
    const fence =
      fromEngine && !hung && ruined === undefined
        ? await inSpan('failover.fence', { 'dr.database': from ?? '', 'dr.primary_up': fromUp }, () => this.tryFence(fromEngine, fromUp, timeoutMs))
        : undefined;
    let dataSync: DataSyncOutcome;
    try {
      await this.runHook(from, to, request);
      dataSync = await inSpan('failover.sync', { 'dr.database': to, 'dr.fenced': fence !== undefined }, async (span) => {
        const outcome: DataSyncOutcome = !fromEngine
          ? { method: 'none', complete: false, detail: 'no previous primary' }
          : ruined !== undefined
            ? await this.staleOutcome(targetEngine, `the old primary ${from} ${ruined}, nothing was copied from it`, fromEngine)
            : await this.catchUp(targetEngine, fromEngine, fence);
        span.setAttributes({ 'dr.sync.method': outcome.method, 'dr.sync.complete': outcome.complete });
        return outcome;
      });
      phases.sync = Math.round(performance.now() - t);
      t = performance.now();
      // Own it before acting: the epoch read afresh (nobody switched meanwhile) and the lease still ours, right before the one step that cannot be undone.
      const now = await store.read();
      if (now.epoch !== state.epoch) throw new ConflictError(`another process switched the primary first (epoch ${state.epoch} -> ${now.epoch}); nothing changed here`);
      stillLeading(leadership, `promote ${to}`);
      await inSpan('failover.promote', { 'dr.database': to, 'db.system': targetEngine.kind }, () => this.retry(`promote ${to}`, () => targetEngine.promote(timeoutMs * 4)));
    } catch (error) {
      await fence?.release().catch((e) => log.error({ err: e }, `disaster-recovery failover: could not lift the fence of ${from}`));
      throw error;
    }
    // Lossless means fenced and caught up: the sync outcome alone could be complete for a dead primary's last copy.
    const formerPrimary =
      from && fromEngine ? formerPrimaryOf(from, fromEngine, to, { trigger: request.trigger, primaryWasUp: fromUp, syncComplete: fence !== undefined && dataSync.complete }) : undefined;
    // Promoted: from here a lost race must not be reported as "nothing changed".
    const committed = leadership.stillLeader()
      ? await inSpan('failover.switch', { 'dr.to': to, 'dr.epoch': state.epoch }, () =>
          store.commitSwitch(state.epoch, from, to, request.trigger, Date.now(), { demoteFrom: formerPrimary?.demoted ?? true }),
        ).catch((error: Error) => error)
      : new LeadershipLost(`leadership of ${leadership.holder} lost before the switch was recorded`);
    if (!committed || committed instanceof Error) {
      await fence?.release().catch((e) => log.error({ err: e }, `disaster-recovery failover: could not lift the fence of ${from}`));
      const why = await this.fenceUnrecorded(targetEngine, committed);
      const failed = await this.finish(record({ result: 'failed', error: why }));
      throw new FailoverFailed(`failover to ${to} failed: ${why}`, failed);
    }    phases.switch = Math.round(performance.now() - t);
    await fence?.keep();
    const followers = await inSpan('failover.follow', { 'dr.primary': to }, () => this.repointStandbys(from, targetEngine));
    const done = record({
      result: 'success',
      epoch: committed.epoch,
      dataSync: followers ? { ...dataSync, detail: `${dataSync.detail}; ${followers}` } : dataSync,
      ...(formerPrimary ? { formerPrimary } : {}),
    });
    const kind = fromUp ? 'switchover' : 'failover';
    log.warn({ from, to, epoch: committed.epoch, kind, dataSync, phases }, `disaster-recovery ${kind} completed: ${to} is the primary (epoch ${committed.epoch})`);
    if (formerPrimary) log.warn({ database: from, demoted: formerPrimary.demoted }, `disaster-recovery failover: ${formerPrimary.note}`);
    return this.finish(done);
  }

  /**
   * The target was promoted but the switch could not be recorded (the lease lost,
   * another process switched, the store unreachable): the cluster's primary is
   * still the recorded one, so the stray writable target is fenced again, and the
   * history says so truthfully.
   */
  private async fenceUnrecorded(target: Engine, cause: Error | undefined): Promise<string> {
    const { store, config, log } = this.deps;
    const recorded = await store.read().then(
      (s) => primaryOf(s, config) ?? 'none',
      () => 'unknown (the state store does not answer)',
    );
    let fenced: string;
    try {
      await (await target.fence(stepTimeoutMs(config) * 2)).keep();
      fenced = 'fenced again';
    } catch (error) {
      fenced = `and could NOT be fenced again (${(error as Error).message}): make it read-only by hand`;
    }
    const why = `promoted but not recorded: ${target.name} is writable, the cluster's primary is ${recorded}; ${fenced} (${cause?.message ?? 'another process switched the primary first'})`;
    log.fatal({ database: target.name }, `disaster-recovery failover: ${why}`);
    return why;
  }

  /** A live primary must be fenced (or the switch is refused); a dead one is tried briefly, for a final copy. */
  private async tryFence(engine: Engine, up: boolean, timeoutMs: number): Promise<Fence | undefined> {
    try {
      return await engine.fence(up ? this.deps.config.monitoring.probe_timeout * 2000 : Math.min(timeoutMs, 2000));
    } catch (error) {
      if (up) throw new ConflictError(`cannot fence the primary ${engine.name}, so the switch would not be lossless: ${(error as Error).message}`);
      return undefined;
    }
  }

  private async catchUp(target: Engine, from: Engine, fence: Fence | undefined): Promise<DataSyncOutcome> {
    const timeoutMs = Math.max(30_000, stepTimeoutMs(this.deps.config) * 6);
    if (fence) {
      try {
        return await this.retry(`bring ${target.name} up to date`, () => target.catchUp(from, fence, timeoutMs));
      } catch (error) {
        throw new ConflictError(`cannot bring ${target.name} up to date from ${from.name}: ${(error as Error).message}`);
      }
    }
    try {
      return await target.catchUp(from, undefined, Math.min(timeoutMs, 10_000));
    } catch (error) {
      return await this.staleOutcome(target, `the old primary could not be read (${(error as Error).message})`, from);
    }
  }

  private async staleOutcome(target: Engine, why: string, from: Engine): Promise<DataSyncOutcome> {
    const copiedAt = this.deps.lastCopyAt(target.name);
    const unshipped = await this.deps.unshipped?.(from.name, target.name).catch(() => undefined);
    const outcome: DataSyncOutcome = {
      method: target.replicatedBySidecar ? 'periodic-copy' : 'none',
      complete: false,
      detail: `${why}; ${
        copiedAt
          ? `data as of the last copy at ${new Date(copiedAt).toISOString()}`
          : target.replicatedBySidecar
            ? // Copy times live in the sidecar that makes the copies; a CLI process does not know them.
              'data as of its last periodic copy, made at a time this process does not know'
            : 'no copy of the data was made'
      }${unshipped ? `; ${unshipped}` : ''}`,
    };
    if (copiedAt) outcome.lagSeconds = (Date.now() - copiedAt) / 1000;
    return outcome;
  }

  private async choose(from: string | undefined, state: ClusterState): Promise<string | { why: string }> {
    const { engines, config } = this.deps;
    const timeoutMs = stepTimeoutMs(config);
    const others = config.topology.all().filter((d) => d.name !== from);
    const probes = await Promise.all(others.map((d) => (d.enabled ? engines.get(d.name)!.probe(timeoutMs) : undefined)));
    const fromEngine = from ? engines.get(from) : undefined;
    const inputs: CandidateInput[] = others.map((d, i) => {
      const probe = probes[i];
      const copiedAt = this.deps.lastCopyAt(d.name);
      let lag = probe?.replicationLagSeconds ?? (copiedAt ? (Date.now() - copiedAt) / 1000 : undefined);
      // A standby cut off only by the primary's death is as current as it was then, however long
      // before the death the last transaction was: its replay lag would say otherwise.
      const behind = probe && fromEngine ? engines.get(d.name)!.lagBehind?.(fromEngine, probe) : undefined;
      if (behind !== undefined) lag = lag === undefined ? behind : Math.min(lag, behind);
      return { name: d.name, enabled: d.enabled, priority: d.priority, engine: d.target.engine, up: probe?.up ?? false, lagSeconds: lag };
    });
    const fromConfig = config.topology.get(from);
    const choice = chooseCandidate(inputs, {
      from,
      fromEngine: fromConfig?.target.engine,
      demoted: state.demoted,
      maxLagSeconds: config.failover.max_lag_on_failover,
    });
    return choice.kind === 'chosen' ? choice.target : { why: describeRejections(choice.passedOver) };
  }

  /** A manual target: known, enabled, not the primary already, same engine, and up right now. */
  private async validateTarget(name: string, from: string | undefined): Promise<string> {
    const { config, engines } = this.deps;
    const db = config.topology.require(name);
    if (!db.enabled) throw new InputError(`database "${name}" is disabled in the config`);
    if (name === from) throw new InputError(`database "${name}" is already the primary`);
    const fromDb = config.topology.get(from);
    if (fromDb && fromDb.target.engine !== db.target.engine) {
      throw new InputError(`database "${name}" is ${db.target.engine} and the primary ${from} is ${fromDb.target.engine}: no failover across engines`);
    }
    const probe = await engines.get(name)!.probe(stepTimeoutMs(config));
    if (!probe.up) throw new ConflictError(`database "${name}" is down (${probe.error}); nothing changed`);
    return name;
  }

  private async repointStandbys(from: string | undefined, primary: Engine): Promise<string> {
    const { config, engines, log } = this.deps;
    const standbys = config.topology.enabled().filter((d) => d.name !== primary.name && d.name !== from && d.target.engine === 'postgresql');
    const notes = await Promise.all(
      standbys.map(async (d) => {
        try {
          return `${d.name}: ${await engines.get(d.name)!.follow(primary)}`;
        } catch (error) {
          log.error({ database: d.name, err: error }, `disaster-recovery failover: ${d.name} could not be pointed at ${primary.name}`);
          return `${d.name}: could not follow (${(error as Error).message})`;
        }
      }),
    );
    return notes.join('; ');
  }

  private runHook(from: string | undefined, to: string, request: FailoverRequest): Promise<void> {
    const command = this.deps.config.failover.pre_promote;
    if (!command) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const env = { ...process.env, DR_FROM: from ?? '', DR_TO: to, DR_TRIGGER: request.trigger, DR_REASON: request.reason };
      const child = spawn('sh', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.on('error', (error) => reject(new DrError(`pre_promote hook could not run: ${error.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new DrError(`pre_promote hook failed (${signal ?? `exit ${code}`}), promotion aborted: ${output.trim().split('\n').pop() ?? ''}`));
      });
    });
  }

  private async retry<T>(what: string, step: () => Promise<T>): Promise<T> {
    const { max_retry_attempts: attempts, retry_delay: delay } = this.deps.config.failover;
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (attempt >= attempts) throw error;
        this.deps.log.warn({ attempt, err: error }, `disaster-recovery failover: ${what} failed, retrying in ${delay} s`);
        await new Promise((r) => setTimeout(r, delay * 1000));
      }
    }
  }

  private async finish(record: FailoverRecord): Promise<FailoverRecord> {
    const id = await this.deps.store.appendHistory(record);
    const summary = record.result === 'success' ? `failover ${record.from ?? '-'} -> ${record.to}: success` : `failover ${record.result}: ${record.error}`;
    if (this.deps.config.failover.notification_enabled) this.deps.notifier.notify({ event: 'failover', summary, ...failoverRecordJson({ ...record, id }) });
    return { ...record, id };
  }
}

/** Throws (nothing done yet of `step`) when the leadership is no longer confirmed. */
function stillLeading(leadership: Leadership, step: string): void {
  if (!leadership.stillLeader()) throw new LeadershipLost(`leadership of ${leadership.holder} lost before "${step}"; not done`);
}

/** Whether the replaced primary is demoted (a plain decision), and the words that tell the operator what follows. */
function formerPrimaryOf(from: string, engine: Engine, to: string, facts: Omit<FormerPrimaryInput, 'keptWarm'>): NonNullable<FailoverRecord['formerPrimary']> {
  const fate = formerPrimaryFate({ ...facts, keptWarm: engine.replicatedBySidecar });
  return { name: from, demoted: fate.demote, note: formerPrimaryNote(from, engine.kind, to, fate.because) };
}
