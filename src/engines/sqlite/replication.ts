import type { DataSyncOutcome } from '../engine.js';
import type { Engines } from '../index.js';
import { SqliteEngine } from '../sqlite.js';
import { CopyCancelled } from '../sqlite-copy.js';
import type { Logger } from '../../log.js';
import type { ShipArchive } from './archive.js';
import { WalReplicator } from './wal-replicator.js';
import type { ShipOutcome } from './wal-shipper.js';

export interface CopyPlan {
  /** The primary to copy from, when it is up. */
  primary: string | undefined;
  /** Databases not to overwrite: the primary, demoted former primaries, disabled ones. */
  exclude: readonly string[];
  /** False while a failover is under way. */
  allowed: boolean;
  /**
   * This process must not hold the primary at all (a sidecar that is not the leader): its
   * snapshot would pin the WAL the leader checkpoints. Unlike `allowed`, which a failover
   * clears while the snapshot is kept for its last ship.
   */
  release?: boolean;
  /** The epoch the plan was made in: a secondary's lag counts only while the primary it follows is still the primary. */
  epoch: number;
  /**
   * Asked under each secondary's write lock right before its data is changed:
   * a reason when the plan no longer holds (a switch was recorded since, or a
   * failover is under way, maybe in another process), else undefined.
   */
  stillValid(): Promise<string | undefined>;
}

export interface ReplicationOptions {
  /** failover.sync_interval: seconds between two reads of the primary's WAL. */
  intervalSeconds: number;
  /** Past this size of the primary's WAL the sidecar checkpoints it (default 4 MB, SQLite's own autocheckpoint). */
  walBoundBytes?: number;
  /** What a stalled secondary may miss, in memory, before it needs a whole copy (default 64 MB). */
  maxPendingBytes?: number;
}

/** A secondary's replication state, within the current generation of the current primary. */
interface Follower {
  epoch: number;
  /** Taking the primary's committed ranges (else: a whole copy comes first). */
  following: boolean;
  /** Everything committed before this time (epoch ms) is in the secondary. */
  heldUntil: number | undefined;
  /** The last read found nothing it does not hold. */
  current: boolean;
  /** The latest problem logged, so each is logged once. */
  problem: string | undefined;
}

/** Counters for metrics and the bench. */
export interface ReplicationTotals {
  generations: Map<string, number>;
  shippedPageBytes: number;
  frames: number;
  transactions: number;
  largestWalBytes: number;
}

/** A database not in WAL mode is copied whole, but not more often than this. */
const WHOLE_COPY_MIN_SECONDS = 60;

/**
 * Keeps SQLite secondaries following the primary. A primary in WAL mode is
 * followed by shipping its committed WAL frames every `sync_interval` (a
 * WalReplicator in a worker thread holds its snapshot); each secondary starts a
 * generation with a whole online copy, and starts another whenever continuity
 * is lost (the log changed behind the sidecar's back, the file was replaced,
 * the sidecar restarted, the secondary missed too much). A primary not in WAL
 * mode keeps whole-file copies, with a warning naming `PRAGMA journal_mode=WAL`.
 *
 * Never overwritten: a demoted former primary (it may hold the writes of the
 * lost window), and anything once the plan no longer holds.
 */
export class SqliteReplication {
  private readonly followers = new Map<string, Follower>();
  private current: { primary: string; epoch: number; replicator: WalReplicator | undefined; walMode: boolean; copiedAt: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Asked by the worker under a secondary's lock: the plan of the round under way, or a pass for a failover's final ship. */
  private guard: (target: string) => Promise<string | undefined> = async () => 'no round under way';
  private readonly warned = new Set<string>();
  private lastError: string | undefined;
  readonly totals: ReplicationTotals = { generations: new Map(), shippedPageBytes: 0, frames: 0, transactions: 0, largestWalBytes: 0 };

  constructor(
    private readonly engines: Engines,
    private readonly options: ReplicationOptions,
    private readonly plan: () => Promise<CopyPlan>,
    private readonly log: Logger,
    /** Continuous archiving: every read of a primary's WAL is also archived (archive.ts). */
    private readonly archive?: ShipArchive,
  ) {}

  start(): void {
    this.stopped = false;
    const tick = async () => {
      await this.exclusive(() => this.copyOnce());
      if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalSeconds * 1000);
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.closeCurrent();
  }

  /** Everything committed on the primary before this time is in `name` (the time of its last copy, for a whole-file copy). */
  lastCopyAt(name: string): number | undefined {
    return this.followers.get(name)?.heldUntil;
  }

  /**
   * The age of the oldest commit `name` does not hold yet, as far as the reads
   * of the WAL tell (to within one sync_interval): 0 while the last read found
   * nothing it misses; undefined for a database nobody replicates to in `epoch`.
   */
  lagSeconds(name: string, epoch: number, now: number = Date.now()): number | undefined {
    const follower = this.followers.get(name);
    if (!follower || follower.epoch !== epoch || follower.heldUntil === undefined) return undefined;
    if (follower.current && this.current?.walMode) return 0;
    return Math.max(0, (now - follower.heldUntil) / 1000);
  }

  /** One round: a whole copy where a generation starts, then the committed frames to every follower. */
  copyOnce(): Promise<void> {
    return this.round().then(
      () => (this.lastError = undefined),
      (error: Error) => {
        // Once per streak of the same failure: a round runs every sync_interval.
        if (this.lastError !== error.message) this.log.error({ err: error }, `disaster-recovery sync: ${error.message}`);
        this.lastError = error.message;
      },
    );
  }

  /**
   * A failover's or switchover's last step before promoting `target`: ships
   * what the primary committed and `target` does not hold yet (under the
   * primary's fence, everything). Undefined when `target` does not follow
   * `source` by WAL shipping (the caller then copies the whole file).
   */
  async shipRest(source: SqliteEngine, target: SqliteEngine, fenced: boolean): Promise<DataSyncOutcome | undefined> {
    return this.exclusive(async () => {
      const current = this.current;
      const follower = this.followers.get(target.name);
      if (!current?.replicator || current.primary !== source.name || !follower?.following) return undefined;
      const started = performance.now();
      const shipped = await this.withGuard(async () => undefined, () =>
        current.replicator!.ship({ targets: [{ name: target.name, file: target.file }], final: true, archive: this.archive?.request(source.name) }),
      );
      this.archive?.absorb(source.name, shipped);
      if (shipped.lost !== undefined) {
        this.log.warn({ from: source.name, to: target.name }, `disaster-recovery sync: cannot ship the rest of ${source.name}: ${shipped.lost}`);
        return undefined;
      }
      this.count(shipped);
      const outcome = shipped.targets[0]!;
      if (outcome.status !== 'applied') {
        const since = follower.heldUntil === undefined ? 'an unknown time' : `${((Date.now() - follower.heldUntil) / 1000).toFixed(1)} s`;
        throw new Error(
          `could not ship the rest of ${source.name} to ${target.name} (${outcome.detail ?? outcome.status}); not shipped: ` +
            `${outcome.pendingTransactions} transactions (${outcome.pendingFrames} frames), the oldest up to ${since} old`,
        );
      }
      this.markApplied(follower, shipped);
      const ms = (performance.now() - started).toFixed(0);
      const tail = shipped.uncommittedFrames > 0 ? `; ${shipped.uncommittedFrames} frames of an uncommitted transaction were not shipped` : '';
      return {
        method: 'wal-shipping',
        complete: fenced,
        detail:
          `shipped the last ${shipped.transactions} transactions (${shipped.frames} WAL frames) of ${source.name} in ${ms} ms` +
          `${fenced ? ' under its write lock' : ''}${shipped.primaryDeleted ? ', read from its deleted file (gone from its path) through the descriptors the sidecar held' : ''}` +
          `; not shipped: 0 committed transactions, 0 s${tail}`,
      };
    });
  }

  /**
   * For a failover that does not read the old primary (it lost its data, is damaged, or
   * cannot be read): what its WAL, still open here, holds that `target` lacks: counted, not shipped.
   */
  unshipped(source: string, target: string): Promise<string | undefined> {
    return this.exclusive(async () => {
      const current = this.current;
      const follower = this.followers.get(target);
      const engine = this.engines.get(target);
      if (!current?.replicator || current.primary !== source || !follower?.following || !(engine instanceof SqliteEngine)) return undefined;
      const peek = await this.withGuard(
        async () => 'counted, not shipped',
        () => current.replicator!.ship({ targets: [{ name: target, file: engine.file }], final: true, archive: this.archive?.request(source) }),
      );
      this.archive?.absorb(source, peek);
      if (peek.lost !== undefined) return undefined;
      const left = peek.targets[0];
      const since = follower.heldUntil === undefined ? '' : `, all committed within the last ${((Date.now() - follower.heldUntil) / 1000).toFixed(1)} s`;
      return `not shipped: ${left?.pendingTransactions ?? 0} committed transactions (${left?.pendingFrames ?? 0} WAL frames)${since}`;
    });
  }

  /** A secondary about to become the primary: back to WAL mode, as the primary it replaces was. */
  async promoting(target: SqliteEngine): Promise<void> {
    if (this.followers.has(target.name)) await target.restoreWalMode(this.log);
  }

  private async round(): Promise<void> {
    const plan = await this.plan();
    if (plan.release && this.current) {
      await this.closeCurrent();
      for (const follower of this.followers.values()) follower.following = false;
    }
    if (!plan.allowed || !plan.primary) return;
    const primary = this.engines.get(plan.primary);
    if (!(primary instanceof SqliteEngine)) return;
    const problem = await primary.sourceProblem();
    if (problem !== undefined) {
      this.warnOnce(`source:${primary.name}:${problem}`, `disaster-recovery sync: nothing shipped from ${primary.name}: ${problem}`);
      return;
    }
    if (this.current?.primary !== primary.name || this.current.epoch !== plan.epoch) await this.open(primary, plan.epoch);
    const targets = this.engines
      .all()
      .filter((e): e is SqliteEngine => e instanceof SqliteEngine && e !== primary && !plan.exclude.includes(e.name));
    await this.withGuard(
      () => plan.stillValid(),
      async () => {
        if (!this.current!.walMode) {
          if (this.archive?.request(primary.name)) this.warnOnce(`archive:${primary.name}`, `disaster-recovery archive: ${primary.name} is not archived: only a primary in WAL mode is (PRAGMA journal_mode=WAL)`);
          return this.copyWhole(primary, targets, plan);
        }
        for (const target of targets) {
          const follower = this.follower(target.name, plan.epoch);
          if (follower.following) continue;
          if (!(await this.startGeneration(primary, target, plan, follower))) return;
        }
        const following = targets.filter((t) => this.followers.get(t.name)?.following);
        const shipped = await this.current!.replicator!.ship({ targets: following.map((t) => ({ name: t.name, file: t.file })), archive: this.archive?.request(primary.name) });
        this.archive?.absorb(primary.name, shipped);
        this.absorb(primary, shipped);
      },
    );
  }

  /** A new generation for `target`: a whole online copy, taken after the replicator's position (so the frames that follow fit it). */
  private async startGeneration(primary: SqliteEngine, target: SqliteEngine, plan: CopyPlan, follower: Follower): Promise<boolean> {
    await this.current!.replicator!.forget(target.name);
    const startedAt = Date.now();
    try {
      const copy = await target.catchUp(primary, undefined, 10 * 60_000, () => plan.stillValid(), { rollbackJournal: true });
      follower.following = true;
      follower.heldUntil = startedAt;
      follower.current = false;
      follower.problem = undefined;
      this.totals.generations.set(target.name, (this.totals.generations.get(target.name) ?? 0) + 1);
      this.log.info({ from: primary.name, to: target.name }, `disaster-recovery sync: new generation for ${target.name}: ${copy.detail}; WAL frames of ${primary.name} follow`);
      return true;
    } catch (error) {
      if (error instanceof CopyCancelled) {
        this.log.info({ from: primary.name, to: target.name }, `disaster-recovery sync: ${error.message}`);
        return false;
      }
      this.log.error({ from: primary.name, to: target.name, err: error }, `disaster-recovery sync: whole copy of ${primary.name} to ${target.name} failed`);
      return true;
    }
  }

  private absorb(primary: SqliteEngine, shipped: ShipOutcome): void {
    if (shipped.lost !== undefined) {
      this.log.warn({ database: primary.name, reason: shipped.lost }, `disaster-recovery sync: continuity with ${primary.name} lost (${shipped.lost}); every secondary starts a new generation with a whole copy`);
      for (const follower of this.followers.values()) follower.following = false;
      // The next round opens a new replicator (a new snapshot) before the copies.
      void this.closeCurrent();
      return;
    }
    this.count(shipped);
    for (const outcome of shipped.targets) {
      const follower = this.followers.get(outcome.name)!;
      if (outcome.status === 'applied') {
        this.markApplied(follower, shipped);
        if (follower.problem !== undefined) this.log.info({ database: outcome.name }, `disaster-recovery sync: ${outcome.name} caught up`);
        follower.problem = undefined;
        continue;
      }
      follower.current = false;
      if (outcome.status === 'needs-copy') follower.following = false;
      const problem = `${outcome.name} ${outcome.status === 'needs-copy' ? 'needs a whole copy' : 'is behind'}: ${outcome.detail ?? outcome.status}`;
      if (follower.problem !== problem) this.log.warn({ database: outcome.name, pendingTransactions: outcome.pendingTransactions }, `disaster-recovery sync: ${problem}`);
      follower.problem = problem;
    }
  }

  private markApplied(follower: Follower, shipped: ShipOutcome): void {
    follower.heldUntil = shipped.readAt;
    follower.current = shipped.transactions === 0;
  }

  private count(shipped: ShipOutcome): void {
    this.totals.frames += shipped.frames;
    this.totals.transactions += shipped.transactions;
    this.totals.shippedPageBytes += shipped.pageBytes * shipped.targets.filter((t) => t.status === 'applied').length;
    this.totals.largestWalBytes = Math.max(this.totals.largestWalBytes, shipped.walBytes);
  }

  /** A primary not in WAL mode: today's whole-file copies, at most once a minute. */
  private async copyWhole(primary: SqliteEngine, targets: SqliteEngine[], plan: CopyPlan): Promise<void> {
    const every = Math.max(this.options.intervalSeconds, WHOLE_COPY_MIN_SECONDS) * 1000;
    if (Date.now() - this.current!.copiedAt < every) return;
    this.current!.copiedAt = Date.now();
    for (const target of targets) {
      const startedAt = Date.now();
      try {
        await target.catchUp(primary, undefined, 60_000, () => plan.stillValid());
        const follower = this.follower(target.name, plan.epoch);
        follower.heldUntil = startedAt;
        follower.current = false;
        this.log.debug({ from: primary.name, to: target.name }, `disaster-recovery sync: copied ${primary.name} to ${target.name}`);
      } catch (error) {
        if (error instanceof CopyCancelled) {
          this.log.info({ from: primary.name, to: target.name }, `disaster-recovery sync: ${error.message}`);
          return;
        }
        this.log.error({ from: primary.name, to: target.name, err: error }, `disaster-recovery sync: copy of ${primary.name} to ${target.name} failed`);
      }
    }
  }

  /** Why `name` is not shipped to (a primary not in WAL mode), for status. */
  warning(name: string): string | undefined {
    const current = this.current;
    if (!current || current.walMode || current.primary !== name) return undefined;
    return `${name} is not in WAL mode: its secondaries get whole-file copies (at most once a minute) instead of its WAL; run PRAGMA journal_mode=WAL on it`;
  }

  private async open(primary: SqliteEngine, epoch: number): Promise<void> {
    await this.closeCurrent();
    // A new primary, or the same after a switch: nobody follows it yet.
    for (const follower of this.followers.values()) follower.following = false;
    const replicator = new WalReplicator(
      { primary: primary.file, lockTimeoutMs: 5000, maxPendingBytes: this.options.maxPendingBytes ?? 64 * 1048576, walBoundBytes: this.options.walBoundBytes ?? 4 * 1048576 },
      (target) => this.guard(target),
    );
    let begun: Awaited<ReturnType<WalReplicator['begin']>>;
    try {
      begun = await replicator.begin();
    } catch (error) {
      await replicator.close();
      throw new Error(`cannot follow ${primary.name}'s WAL: ${(error as Error).message}`);
    }
    this.current = { primary: primary.name, epoch, replicator, walMode: begun.walMode, copiedAt: 0 };
    if (!begun.walMode) {
      await replicator.close();
      this.current.replicator = undefined;
      const warning = this.warning(primary.name)!;
      this.warnOnce(`mode:${primary.name}`, `disaster-recovery sync: ${warning} (journal_mode is ${begun.journalMode})`);
    }
  }

  private async closeCurrent(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.replicator?.close();
  }

  private follower(name: string, epoch: number): Follower {
    let follower = this.followers.get(name);
    if (!follower || follower.epoch !== epoch) {
      follower = { epoch, following: false, heldUntil: undefined, current: false, problem: undefined };
      this.followers.set(name, follower);
    }
    return follower;
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message);
  }

  private async withGuard<T>(guard: (target: string) => Promise<string | undefined>, fn: () => Promise<T>): Promise<T> {
    this.guard = guard;
    try {
      return await fn();
    } finally {
      this.guard = async () => 'no round under way';
    }
  }

  /** Rounds and a failover's last ship never overlap: the replicator holds one position. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.running.then(fn, fn);
    this.running = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
