/**
 * Leadership: a lease held and renewed in the background, whose loss is known at
 * once. Actions check `signal` (or `stillLeader()` right before an irreversible
 * step): it aborts the moment a renewal fails or is refused, and when the lease
 * runs out without a renewal confirmed, even if the renewal never came back
 * (etcd unreachable, this process frozen and resumed).
 */
import { performance } from 'node:perf_hooks';
import { ConflictError } from '../errors.js';
import type { StateStore } from './store.js';

/** The reason a leadership's signal carries. */
export class LeadershipLost extends ConflictError {}

export interface Leadership {
  readonly holder: string;
  /** Aborted (reason: LeadershipLost) once the lease is lost or cannot be confirmed. */
  readonly signal: AbortSignal;
  /** True while the lease is confirmed to run; false (and the signal aborted) otherwise. Synchronous. */
  stillLeader(): boolean;
  /** Epoch ms until which the lease is known to run (what a status shows), without asking the store. */
  expiresAt?(): number;
  /** Stops renewing and gives the lease up. */
  release(): Promise<void>;
}

export interface LeadershipOptions {
  /** Renewals per TTL (3: a renewal every third of it, as etcd's own clients do). */
  renewalsPerTtl?: number;
}

/** Takes the lease for `holder`, or returns undefined when another holder has it. */
export async function takeLeadership(store: StateStore, holder: string, ttlMs: number, options: LeadershipOptions = {}): Promise<Leadership | undefined> {
  const sentAt = performance.now();
  const lease = await store.acquireLease(holder, ttlMs);
  if (!lease) return undefined;
  return new HeldLease(store, holder, ttlMs, validUntil(sentAt, lease.expiresAt), options.renewalsPerTtl ?? 3);
}

/**
 * The lease started on the server no earlier than the request was sent, so it runs
 * at least until send time + its TTL. Measured on the monotonic clock: a wall-clock
 * step cannot stretch it.
 */
function validUntil(sentAt: number, expiresAt: number): number {
  return sentAt + Math.max(0, expiresAt - Date.now());
}

class HeldLease implements Leadership {
  private readonly controller = new AbortController();
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly store: StateStore,
    readonly holder: string,
    private readonly ttlMs: number,
    private until: number,
    renewalsPerTtl: number,
  ) {
    // Unreferenced: holding a lease is no reason for a process to stay up.
    this.renewTimer = setInterval(() => void this.renew(), ttlMs / renewalsPerTtl).unref();
    this.armExpiry();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stillLeader(): boolean {
    if (this.controller.signal.aborted) return false;
    if (performance.now() >= this.until) {
      this.lose('the lease ran out without a confirmed renewal');
      return false;
    }
    return true;
  }

  expiresAt(): number {
    return Date.now() + Math.max(0, this.until - performance.now());
  }

  async release(): Promise<void> {
    this.lose('released');
    // Even after a loss: a lease still under our name (a renewal that only failed to answer) is given up too.
    await this.store.releaseLease(this.holder);
  }

  private async renew(): Promise<void> {
    if (this.renewing || !this.stillLeader()) return;
    this.renewing = true;
    const sentAt = performance.now();
    try {
      const lease = await this.store.renewLease(this.holder, this.ttlMs);
      if (!lease) return this.lose('the lease expired or went to another holder');
      if (this.controller.signal.aborted) return;
      this.until = validUntil(sentAt, lease.expiresAt);
      this.armExpiry();
    } catch (error) {
      this.lose(`a renewal failed: ${(error as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    // Timers run on a millisecond clock and may fire a fraction early: not expired yet means look again.
    this.expiryTimer = setTimeout(() => {
      if (this.stillLeader()) this.armExpiry();
    }, Math.max(1, Math.ceil(this.until - performance.now()))).unref();
  }

  private lose(why: string): void {
    clearInterval(this.renewTimer);
    clearTimeout(this.expiryTimer);
    if (!this.controller.signal.aborted) this.controller.abort(new LeadershipLost(`leadership of ${this.holder} lost: ${why}`));
  }
}
