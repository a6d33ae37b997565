/**
 * The HA loop (Patroni's ha.py, in small): every sidecar campaigns for the
 * leader lease, probes what it can reach and publishes its view; the leader
 * alone acts: it decides on each probe of the primary whether to fail over
 * (detection, then the live members' majority), fences a resurrected former
 * primary, and carries out the intents other processes record. A sidecar that
 * cannot reach the state store says so, and stops acting with its lease.
 */
import type { Config } from '../config/load.js';
import { detectFailure, type HoldReason } from './detection.js';
import type { FailoverRequest } from '../failover/procedure.js';
import type { Logger } from '../log.js';
import type { DatabaseHealth } from '../monitor/health.js';
import type { Leadership } from '../state/leadership.js';
import type { ClusterState, FailoverRecord, Intent, IntentOutcome, Lease, MemberRecord, StateStore } from '../state/store.js';
import { Campaign } from './campaign.js';
import { admitIntent, type IntentKind } from './intent-admission.js';
import { failureOutcome } from './intents.js';
import { liveMembers, sidecarView, sightingOf, viewSignature, type SidecarView } from './member-view.js';
import { primaryDownByMajority } from './quorum.js';

export interface HaDeps {
  config: Config;
  store: StateStore;
  log: Logger;
  member: string;
  holder: string;
  ttlMs: number;
  /** How often the leader looks for intents (a store request each time). */
  claimEveryMs: number;
  /** How long submitters wait for a claim (older intents are refused). */
  claimWaitMs: number;
  state(): ClusterState;
  currentPrimary(): string | undefined;
  autoFailoverEnabled(): boolean;
  /** Why the store cannot be trusted (its file lost), from the service. */
  storeProblem(): string | undefined;
  healths(): DatabaseHealth[];
  lagSeconds(name: string): number | undefined;
  failoverUnderWay(): boolean;
  runFailover(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord>;
  fenceResurrected(name: string): Promise<void>;
  execute(kind: IntentKind, params: Record<string, unknown>, leadership: Leadership): Promise<IntentOutcome>;
  /** Leader-only work (periodic copies, scheduled backups) starts and stops with the leadership. */
  onLeadership(leading: boolean): void;
}

type Hold = { primary: string; because: HoldReason | 'no_quorum'; why: string };

export class HaLoop {
  private readonly campaign: Campaign;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  /** Only a loop that ran speaks for its member: a CLI command with a sidecar's config must not mark that sidecar stopped. */
  private started = false;
  private readonly running = new Set<Promise<void>>();
  private lastAttemptAt: number | undefined;
  private held: Hold | undefined;
  private cutOffWhy: string | undefined;
  private lastCampaignAt = 0;
  private lastHeartbeatAt = 0;
  private lastPublishAt = 0;
  private lastSignature = '';
  private cachedMembers: MemberRecord[] = [];
  private cachedLease: Lease | undefined;
  private deciding = false;

  constructor(private readonly deps: HaDeps) {
    this.campaign = new Campaign(deps.store, deps.holder, deps.ttlMs, deps.log, (leading) => {
      this.lastSignature = '';
      if (!this.stopped) deps.onLeadership(leading);
    });
  }

  leadership(): Leadership | undefined {
    return this.stopped ? undefined : this.campaign.current();
  }

  isLeader(): boolean {
    return this.leadership() !== undefined;
  }

  /** Why this sidecar cannot reach the state store right now; undefined when it can. */
  cutOff(): string | undefined {
    return this.cutOffWhy;
  }

  /** Members as last read (every heartbeat), and the lease. */
  members(): MemberRecord[] {
    return this.cachedMembers;
  }

  lease(): Lease | undefined {
    return this.cachedLease;
  }

  /** Why the dead primary is not being replaced (this sidecar's decision, while it leads). */
  heldWhy(primary: string | undefined): string | undefined {
    return this.held?.primary === primary ? this.held?.why : undefined;
  }

  /** A store call failed (the watch, or one of the loop's own): cut off until one succeeds. */
  storeFailed(error: Error): void {
    const why = `the state store does not answer: ${error.message}`;
    if (this.cutOffWhy !== why) this.deps.log.error(`disaster-recovery: ${why}; /primary answers 503 and this sidecar does not act until it answers again`);
    this.cutOffWhy = why;
  }

  private storeAnswered(): void {
    if (this.cutOffWhy) this.deps.log.warn('disaster-recovery: the state store answers again');
    this.cutOffWhy = undefined;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      const value = await fn();
      this.storeAnswered();
      return value;
    } catch (error) {
      this.storeFailed(error as Error);
      return undefined;
    }
  }

  /** Campaigns once (so a lone sidecar leads from its first moment), then ticks. */
  async start(): Promise<void> {
    this.started = true;
    await this.tick();
    const every = Math.min(this.deps.claimEveryMs, this.campaignEveryMs());
    this.timer = setInterval(() => void this.tick(), every);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.all([...this.running]);
    // Said before the record expires, so the others stop counting this sidecar at once.
    if (this.started) await this.deps.store.publishMember(this.deps.member, { leader: false, stopped: true, databases: {} }, this.deps.ttlMs).catch(() => undefined);
    await this.campaign.stop();
  }

  /** Followers try for the lease this often: a dead leader is replaced within its TTL and this much. */
  private campaignEveryMs(): number {
    return Math.min(1000, this.deps.ttlMs / 3);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const now = Date.now();
      if (!this.isLeader() && now - this.lastCampaignAt >= this.campaignEveryMs() - 5) {
        this.lastCampaignAt = now;
        await this.call(() => this.campaign.attempt());
      }
      const leadership = this.leadership();
      if (leadership && !this.deps.storeProblem()) await this.claimIntents(leadership);
      await this.publish();
    } finally {
      this.ticking = false;
    }
  }

  private async claimIntents(leadership: Leadership): Promise<void> {
    const intent = await this.call(() => this.deps.store.claimIntent(leadership.holder));
    if (!intent) return;
    // Carried out beside the loop: a second request meanwhile meets the first under way (and is refused by it).
    const done = this.carryOut(intent, leadership).finally(() => this.running.delete(done));
    this.running.add(done);
  }

  private async carryOut(intent: Intent, leadership: Leadership): Promise<void> {
    const { log, store } = this.deps;
    const admission = admitIntent({ kind: intent.kind, params: intent.params, submittedAt: intent.submittedAt, now: Date.now(), claimWaitMs: this.deps.claimWaitMs });
    log.info({ intent: intent.id, kind: intent.kind, by: intent.submittedBy }, `disaster-recovery: carrying out ${intent.kind} asked by ${intent.submittedBy}`);
    let outcome: IntentOutcome;
    if (!admission.admit) outcome = { ok: false, message: admission.why, data: { error: 'conflict' } };
    else {
      try {
        outcome = await this.deps.execute(admission.kind, intent.params, leadership);
      } catch (error) {
        outcome = failureOutcome(error);
      }
    }
    await store.finishIntent(intent.id, outcome).catch((error) => log.error({ err: error, intent: intent.id }, 'disaster-recovery: the outcome of an intent could not be recorded'));
  }

  /**
   * The view, when it changed (at most once a second) or as a heartbeat (every half
   * TTL: a view lives one TTL); the members and the lease are read every TTL. Few
   * requests: an idle sidecar on etcd should cost the cluster about two a second.
   */
  private async publish(): Promise<void> {
    const view: SidecarView = sidecarView(this.isLeader(), this.deps.healths(), this.deps.lagSeconds);
    const signature = viewSignature(view);
    const now = Date.now();
    const heartbeat = now - this.lastPublishAt >= this.deps.ttlMs / 2;
    if (!heartbeat && (signature === this.lastSignature || now - this.lastPublishAt < 1000)) return;
    this.lastPublishAt = now;
    this.lastSignature = signature;
    await this.call(() => this.deps.store.publishMember(this.deps.member, view as unknown as Record<string, unknown>, this.deps.ttlMs));
    if (now - this.lastHeartbeatAt < this.deps.ttlMs && this.lastHeartbeatAt !== 0) return;
    this.lastHeartbeatAt = now;
    await this.readMembers();
  }

  /** The live members and the lease, for status, the metrics and the partition check. */
  private async readMembers(): Promise<void> {
    const [members, lease] = await Promise.all([this.call(() => this.deps.store.members()), this.call(() => this.deps.store.leaseHolder())]);
    if (members) this.cachedMembers = liveMembers(members);
    this.cachedLease = lease;
  }

  /**
   * One decision per probe: synchronous (no promise) until there is something to do,
   * since it runs for every probe of every database. Followers only publish.
   */
  onProbe(health: DatabaseHealth, previous: DatabaseHealth): void {
    if (this.stopped || this.deps.storeProblem() || this.cutOffWhy) return;
    void this.publish();
    const leadership = this.leadership();
    if (!leadership) return;
    const state = this.deps.state();
    if (health.name !== this.deps.currentPrimary()) {
      if (cameBackWritable(health, previous, state)) void this.deps.fenceResurrected(health.name);
      return;
    }
    if (this.deps.failoverUnderWay() || this.deciding) return;
    const decision = detectFailure({
      primary: health.name,
      consecutiveFailures: health.consecutiveFailures,
      threshold: this.deps.config.failover.detection_threshold,
      autoFailoverEnabled: this.deps.autoFailoverEnabled(),
      inProgress: this.deps.failoverUnderWay(),
      now: Date.now(),
      lastAutoFailoverAt: state.lastAutoFailoverAt,
      cooldownSeconds: this.deps.config.failover.cooldown,
      lastAttemptAt: this.lastAttemptAt,
      retryDelaySeconds: this.deps.config.failover.retry_delay,
    });
    if (decision.action === 'hold') return this.hold({ primary: health.name, because: decision.because, why: decision.why });
    if (decision.action === 'none') {
      this.held = undefined;
      return;
    }
    this.deciding = true;
    void this.agreeThenFailOver(health, leadership).finally(() => (this.deciding = false));
  }

  private hold(hold: Hold): void {
    if (this.held?.primary !== hold.primary || this.held.because !== hold.because) {
      this.deps.log.error({ database: hold.primary }, `disaster-recovery failover held: ${hold.why}`);
    }
    this.held = hold;
  }

  /** The live members' majority first: a leader cut off from the primary alone must not replace it. */
  private async agreeThenFailOver(health: DatabaseHealth, leadership: Leadership): Promise<void> {
    const members = await this.call(() => this.deps.store.members());
    if (!members) return;
    this.cachedMembers = liveMembers(members);
    const others = this.cachedMembers.filter((m) => m.name !== this.deps.member).map((m) => ({ member: m.name, sees: sightingOf(m.view, health.name) }));
    const quorum = primaryDownByMajority({ self: { member: this.deps.member, sees: 'down' }, others });
    if (!quorum.agreed) {
      return this.hold({ primary: health.name, because: 'no_quorum', why: `primary ${health.name} failed ${health.consecutiveFailures} probes in a row here, but ${quorum.why}` });
    }
    this.held = undefined;
    this.lastAttemptAt = Date.now();
    const detectMs = health.failingSince === undefined ? undefined : Date.now() - health.failingSince;
    const reason = `primary ${health.name} failed ${health.consecutiveFailures} probes in a row: ${health.last?.error ?? 'down'}${quorum.alive > 1 ? ` (${quorum.why})` : ''}`;
    const run = this.deps
      .runFailover({ trigger: 'auto', reason, detectMs, ifPrimaryAnswers: 'call off' }, leadership)
      .then(
        () => undefined,
        (error: Error) => this.deps.log.error({ err: error }, `disaster-recovery failover failed: ${error.message}`),
      )
      .finally(() => {
        this.lastAttemptAt = Date.now();
        this.running.delete(run);
      });
    this.running.add(run);
    await run;
  }
}

/** A demoted PostgreSQL primary answering again as a writable database (still fenced: nothing to do). */
function cameBackWritable(health: DatabaseHealth, previous: DatabaseHealth, state: ClusterState): boolean {
  return (
    health.status === 'up' &&
    previous.status !== 'up' &&
    health.last?.inRecovery === false &&
    health.last.readOnly !== true &&
    state.demoted.includes(health.name)
  );
}
