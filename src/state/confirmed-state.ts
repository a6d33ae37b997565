/**
 * What a writer (the library's sessions) knows of the cluster state: the copy
 * the store's watch keeps, and whether it may still be trusted. The per-commit
 * check is a memory read of that copy, not a store round trip:
 *
 * - The copy counts as confirmed while the store confirmed it within one lease
 *   TTL (`state.etcd.ttl`; SQLite: SQLITE_STATE_TTL_MS). A writer cut off from
 *   etcd longer than that stops committing (ClusterStateUnconfirmed) instead of
 *   writing to a primary that may have been replaced; the leader's lease has run
 *   out by then too, so whoever switched did so without this writer's knowledge.
 *   It resumes by itself at the watch's next confirmation.
 * - A switch recorded but not yet delivered (the watch's latency: milliseconds)
 *   is covered by the fence of the old primary, which comes before the record:
 *   PostgreSQL's read-only setting outlasts it, so the watched copy is enough
 *   there. SQLite's fence is its write lock, released right after the record:
 *   a writer that gets the lock must see the state as of that moment, so
 *   SQLite sessions ask `fresh()`: a local poll of the SQLite store
 *   (microseconds), a read where the store is remote (etcd).
 */
import { performance } from 'node:perf_hooks';
import { DrError } from '../errors.js';
import type { ClusterState, StateStore, StateWatch } from './store.js';

/** How long a SQLite store's watched state is trusted without a confirmation (it has no configured TTL). */
export const SQLITE_STATE_TTL_MS = 10_000;

/**
 * The cluster state cannot be confirmed (the state store unreachable for longer than
 * the lease TTL): no commit is made, since the primary may have been replaced meanwhile.
 */
export class ClusterStateUnconfirmed extends DrError {
  override readonly status = 503;
}

/** Pure: whether a state last confirmed at `confirmedAt` (monotonic ms) may still be trusted at `now`. */
export function isConfirmed(now: number, confirmedAt: number | undefined, ttlMs: number): boolean {
  return confirmedAt !== undefined && now - confirmedAt < ttlMs;
}

export interface ConfirmedStateOptions {
  /** How long a confirmation is trusted: the lease TTL. */
  ttlMs: number;
  /** The store as messages name it (a file, the etcd endpoints with passwords masked). */
  where: string;
  /** Where the TTL comes from, for messages ("state.etcd.ttl"). */
  ttlSource: string;
  /** Hears when sessions start being refused (with the reason) and when they are trusted again: once per change, for the log. */
  onTrustChange?: (trusted: boolean, why: string | undefined) => void;
}

export class ConfirmedState {
  private state: ClusterState | undefined;
  private lastError: Error | undefined;
  private stopped = false;
  private trusted = true;
  private readonly listeners = new Set<() => void>();
  private readonly watch: StateWatch;

  constructor(
    private readonly store: StateStore,
    private readonly options: ConfirmedStateOptions,
  ) {
    this.watch = store.watch(
      (state) => {
        this.state = state;
        this.lastError = undefined;
        for (const listener of [...this.listeners]) listener();
      },
      (error) => {
        this.lastError = error;
      },
    );
  }

  /** Resolves once the watch has delivered a first state, or after one TTL (sessions then refuse until it does). */
  async ready(): Promise<void> {
    if (this.state) return;
    await this.until(() => this.state !== undefined, this.options.ttlMs);
  }

  /**
   * The watched state, if confirmed within the TTL (a store that can refresh it
   * locally does so first); else throws ClusterStateUnconfirmed. Synchronous: no I/O
   * for a remote store.
   */
  current(): ClusterState {
    if (this.watch.refresh) {
      try {
        this.watch.refresh();
      } catch (error) {
        this.lastError = error as Error;
        throw this.unconfirmed();
      }
    }
    const confirmedAt = this.watch.confirmedAt();
    if (!this.state || !isConfirmed(performance.now(), confirmedAt, this.options.ttlMs)) throw this.unconfirmed();
    if (!this.trusted) this.trust(true, undefined);
    return this.state;
  }

  /** The state as of now: `current()` where the store refreshes locally, else one read (a round trip). */
  async fresh(): Promise<ClusterState> {
    if (this.watch.refresh) return this.current();
    try {
      return await this.store.read();
    } catch (error) {
      this.lastError = error as Error;
      throw this.unconfirmed();
    }
  }

  /** Resolves once the watch delivers a state whose epoch is not `epoch`, or after `timeoutMs`. */
  async waitForSwitch(epoch: number, timeoutMs: number): Promise<void> {
    await this.until(() => this.state !== undefined && this.state.epoch !== epoch, timeoutMs);
  }

  stop(): void {
    this.stopped = true;
    this.watch.stop();
    for (const listener of [...this.listeners]) listener();
  }

  private until(done: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const check = () => {
        if (this.stopped || done()) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  private trust(trusted: boolean, why: string | undefined): void {
    this.trusted = trusted;
    this.options.onTrustChange?.(trusted, why);
  }

  private unconfirmed(): ClusterStateUnconfirmed {
    const confirmedAt = this.watch.confirmedAt();
    const { where, ttlMs, ttlSource } = this.options;
    const since =
      confirmedAt === undefined ? 'has not confirmed the cluster state since this process started' : `last confirmed the cluster state ${((performance.now() - confirmedAt) / 1000).toFixed(1)} s ago`;
    const why = this.lastError ? ` (${this.lastError.message})` : '';
    const error = new ClusterStateUnconfirmed(
      `cannot confirm the cluster state: the state store ${where} ${since}${why}, and a state older than ${ttlMs / 1000} s (${ttlSource}) is not trusted: ` +
        'no commit is made, the primary may have been replaced meanwhile; sessions resume by themselves once the store answers again',
    );
    if (this.trusted && !this.stopped) this.trust(false, error.message);
    return error;
  }
}
