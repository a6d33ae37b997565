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
import type { ClusterState, FailoverRecord, Intent, IntentOutcome, Lease, MemberRecord, MembershipChange, StateStore } from '../state/store.js';
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
  /** How often the leader looks for intents (a store request each time) when the store does not tell it of new ones. */
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

/** With members kept by the store's stream, a whole read of them this often (in TTLs) catches what a stuck stream missed. */
const MEMBERS_READ_EVERY_TTLS = 3;

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
  /** When the store stopped answering (the first failed call since the last one that answered). */
  private cutOffSince = 0;
  private lastCampaignAt = 0;
  private lastHeartbeatAt = 0;
  private lastPublishAt = 0;
  /** When a change (not a heartbeat) was last published: changes go out at most once a second. */
  private lastChangeAt = 0;
  private publishTimer: NodeJS.Timeout | undefined;
  private lastSignature = '';
  private cachedMembers: MemberRecord[] = [];
  private cachedLease: Lease | undefined;
  private deciding = false;
  /** An intent may wait: at the start, on becoming leader, after a claim, and when the store says one changed. */
  private intentsMayWait = true;
  private lastClaimAt = 0;
  /** The store told of an intent during a tick: tick again right after it. */
  private retick = false;
  private unsubscribeIntents: (() => void) | undefined;
  private unsubscribeMembership: (() => void) | undefined;
  /** The leader key may be free: at the start, and when the store's stream says it changed. */
  private leaderMayBeFree = true;
  /** The members as the store's stream keeps them (etcd), by name; undefined without a stream. */
  private watchedMembers: Map<string, MemberRecord> | undefined;
  private lastMembersReadAt = 0;

  constructor(private readonly deps: HaDeps) {
    this.campaign = new Campaign(deps.store, deps.holder, deps.ttlMs, deps.log, (leading) => {
      this.lastSignature = '';
      // The lease and members are read again at the next publication: who holds the lease just changed.
      this.lastHeartbeatAt = 0;
      if (leading) this.intentsMayWait = true;
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

  /**
   * Why this sidecar can no longer vouch for the cluster state to routers (`/primary` 503): the store
   * has not answered for longer than a lease. Acting stops at the first failed call; routing rides out
   * what a healthy etcd cluster does in less than a lease (an election after its leader died, a slow
   * answer), as the library's writers do: they stop committing past the same lease.
   */
  unconfirmed(now = Date.now()): string | undefined {
    if (!this.cutOffWhy || now - this.cutOffSince < this.deps.ttlMs) return undefined;
    return `${this.cutOffWhy} (for ${((now - this.cutOffSince) / 1000).toFixed(1)} s, longer than the lease)`;
  }

  /** Members as last read (every TTL), and the lease (the leader's own, or as last read). */
  members(): MemberRecord[] {
    return this.cachedMembers;
  }

  lease(): Lease | undefined {
    return this.ownLease() ?? this.cachedLease;
  }

  private ownLease(): Lease | undefined {
    const own = this.leadership();
    return own?.expiresAt ? { holder: own.holder, expiresAt: own.expiresAt() } : undefined;
  }

  /** Why the dead primary is not being replaced (this sidecar's decision, while it leads). */
  heldWhy(primary: string | undefined): string | undefined {
    return this.held?.primary === primary ? this.held?.why : undefined;
  }

  /** A store call failed (the watch, or one of the loop's own): cut off until one succeeds. */
  storeFailed(error: Error): void {
    const why = `the state store does not answer: ${error.message}`;
    if (!this.cutOffWhy) this.cutOffSince = Date.now();
    if (this.cutOffWhy !== why) this.deps.log.error(`disaster-recovery: ${why}; this sidecar does not act until it answers again, and /primary answers 503 once that lasts longer than the lease`);
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
    this.unsubscribeIntents = this.deps.store.onIntentChange?.(() => this.intentChanged());
    this.unsubscribeMembership = this.deps.store.onMembership?.((change) => this.membershipChanged(change));
    if (this.unsubscribeMembership) this.watchedMembers = new Map();
    await this.tick();
    const every = Math.min(this.deps.claimEveryMs, this.campaignEveryMs());
    this.timer = setInterval(() => void this.tick(), every);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.publishTimer);
    this.unsubscribeIntents?.();
    this.unsubscribeMembership?.();
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
      if (!this.isLeader() && (this.leaderMayBeFree || now - this.lastCampaignAt >= this.campaignPollMs() - 5)) {
        this.lastCampaignAt = now;
        this.leaderMayBeFree = false;
        // Tried again at the next tick when the store did not answer.
        if ((await this.call(async () => this.campaign.attempt().then(() => true))) === undefined) this.leaderMayBeFree = true;
      }
      const leadership = this.leadership();
      if (leadership && !this.deps.storeProblem() && (this.intentsMayWait || now - this.lastClaimAt >= this.claimPollMs())) await this.claimIntents(leadership);
      await this.publish();
    } finally {
      this.ticking = false;
    }
    if (this.retick) {
      this.retick = false;
      setImmediate(() => void this.tick());
    }
  }

  /**
   * A store that tells of new intents (etcd, from its watch) is still polled, once a TTL:
   * a watch stream stuck on a frozen member says nothing until its check restarts it.
   */
  private claimPollMs(): number {
    return this.deps.store.onIntentChange ? Math.max(this.deps.claimEveryMs, this.deps.ttlMs) : this.deps.claimEveryMs;
  }

  /**
   * A store that streams the leader key (etcd) tells a follower when it may be free: the
   * follower campaigns then, and otherwise once a TTL in case the stream is stuck (a stream
   * is restarted within a third of a TTL once it misses a state change). Cut off, it tries
   * every second, so it knows at once when the store answers again.
   */
  private campaignPollMs(): number {
    if (!this.deps.store.onMembership || this.cutOffWhy) return this.campaignEveryMs();
    return this.deps.ttlMs;
  }

  /** The store's stream: the leader key or a member changed, or the stream restarted. */
  private membershipChanged(change: MembershipChange): void {
    if (this.stopped) return;
    if (change.kind === 'member' && this.watchedMembers) {
      if (change.record) this.watchedMembers.set(change.name, change.record);
      else this.watchedMembers.delete(change.name);
      this.cachedMembers = liveMembers([...this.watchedMembers.values()]);
      if (change.record) this.reconsider(change.record);
      return;
    }
    if (change.kind === 'resync') this.lastMembersReadAt = 0;
    // Who holds the lease is read again at the next publication.
    this.lastHeartbeatAt = 0;
    if (this.isLeader()) return;
    this.leaderMayBeFree = true;
    if (this.ticking) this.retick = true;
    else void this.tick();
  }

  private intentChanged(): void {
    this.intentsMayWait = true;
    if (!this.isLeader() || this.stopped) return;
    if (this.ticking) this.retick = true;
    else void this.tick();
  }

  private async claimIntents(leadership: Leadership): Promise<void> {
    this.intentsMayWait = false;
    this.lastClaimAt = Date.now();
    let intent: Intent | undefined;
    try {
      intent = await this.deps.store.claimIntent(leadership.holder);
      this.storeAnswered();
    } catch (error) {
      // Looked for again at the next tick, not after a whole poll.
      this.storeFailed(error as Error);
      this.intentsMayWait = true;
      return;
    }
    if (!intent) return;
    // One claimed: another may wait behind it.
    this.intentsMayWait = true;
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
   * TTL: a view lives one TTL); the members and (on a follower) the lease are read every
   * TTL. Few requests: an idle sidecar on etcd should cost the cluster under two a second.
   */
  private async publish(): Promise<void> {
    const view: SidecarView = sidecarView(this.isLeader(), this.deps.healths(), this.deps.lagSeconds);
    const signature = viewSignature(view);
    const now = Date.now();
    const heartbeat = now - this.lastPublishAt >= this.deps.ttlMs / 2;
    const changed = signature !== this.lastSignature;
    if (!heartbeat && !changed) return;
    if (!heartbeat && now - this.lastChangeAt < 1000) {
      // The leader's failover waits for this view (the majority): sent as soon as the rate allows, not at the next tick.
      this.publishTimer ??= setTimeout(() => {
        this.publishTimer = undefined;
        if (!this.stopped) void this.publish();
      }, 1000 - (now - this.lastChangeAt));
      return;
    }
    if (changed) this.lastChangeAt = now;
    this.lastPublishAt = now;
    this.lastSignature = signature;
    const published = await this.call(() => this.deps.store.publishMember(this.deps.member, view as unknown as Record<string, unknown>, this.deps.ttlMs).then(() => true));
    // Its own view as just published: status and the page show it now, not after the next read of the members.
    if (published) this.setOwnView({ name: this.deps.member, view: view as unknown as MemberRecord['view'], publishedAt: now });
    if (now - this.lastHeartbeatAt < this.deps.ttlMs && this.lastHeartbeatAt !== 0) return;
    this.lastHeartbeatAt = now;
    await this.readMembers();
  }

  /**
   * The live members and the lease, for status, the metrics and the partition check.
   * Members the store's stream keeps are read whole only after the stream restarted, and
   * every few TTLs besides.
   */
  private async readMembers(): Promise<void> {
    // The leader knows its own lease (see lease()): no read of it, two requests, per TTL.
    const leading = this.ownLease() !== undefined;
    const now = Date.now();
    const readMembers = !this.watchedMembers || now - this.lastMembersReadAt >= MEMBERS_READ_EVERY_TTLS * this.deps.ttlMs;
    if (readMembers) this.lastMembersReadAt = now;
    const [members, lease] = await Promise.all([
      readMembers ? this.call(() => this.deps.store.members()) : undefined,
      leading ? undefined : this.call(() => this.deps.store.leaseHolder()),
    ]);
    if (members) this.setMembers(members);
    else if (readMembers) this.lastMembersReadAt = 0;
    this.cachedLease = lease;
  }

  private setOwnView(own: MemberRecord): void {
    this.watchedMembers?.set(own.name, own);
    const others = this.cachedMembers.filter((m) => m.name !== own.name);
    this.cachedMembers = liveMembers([...others, own]).sort((a, b) => a.name.localeCompare(b.name));
  }

  private setMembers(members: MemberRecord[]): void {
    if (this.watchedMembers) this.watchedMembers = new Map(members.map((m) => [m.name, m]));
    this.cachedMembers = liveMembers(members);
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
    this.decide(health, leadership, state);
  }

  /** Detection for the primary's latest probe, then (if it says so) the majority and the failover. */
  private decide(health: DatabaseHealth, leadership: Leadership, state: ClusterState): void {
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

  /**
   * A failover held for want of a majority is decided again as soon as another member
   * publishes that it sees the primary down, not at the leader's next probe of it.
   */
  private reconsider(record: MemberRecord): void {
    const held = this.held;
    const leadership = this.leadership();
    if (held?.because !== 'no_quorum' || !leadership || this.deps.storeProblem() || this.cutOffWhy) return;
    if (record.name === this.deps.member || sightingOf(record.view, held.primary) !== 'down' || held.primary !== this.deps.currentPrimary()) return;
    const health = this.deps.healths().find((h) => h.name === held.primary);
    if (health?.status === 'down') this.decide(health, leadership, this.deps.state());
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
    this.setMembers(members);
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
