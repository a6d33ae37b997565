import type { Logger } from '../log.js';
import { takeLeadership, type Leadership } from '../state/leadership.js';
import type { StateStore } from '../state/store.js';

/**
 * A sidecar's campaign for the leader lease: it tries to take it while it does
 * not lead, and hears at once when it loses it (the signal of the leadership),
 * then campaigns again. Only its caller decides how often it tries.
 */
export class Campaign {
  private held: Leadership | undefined;
  private stopping = false;

  constructor(
    private readonly store: StateStore,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly onChange: (leading: boolean) => void,
  ) {}

  /** The leadership while it is confirmed; undefined otherwise. */
  current(): Leadership | undefined {
    return this.held?.stillLeader() ? this.held : undefined;
  }

  /** One try for the lease, when not leading. Rejects when the store cannot be reached. */
  async attempt(): Promise<void> {
    if (this.current()) return;
    const taken = await takeLeadership(this.store, this.holder, this.ttlMs);
    if (!taken) return;
    this.held = taken;
    this.log.warn({ holder: this.holder }, `disaster-recovery: this sidecar is the leader now (${this.holder})`);
    taken.signal.addEventListener('abort', () => {
      if (this.stopping) return;
      if (this.held === taken) this.held = undefined;
      this.log.error({ holder: this.holder }, `disaster-recovery: ${(taken.signal.reason as Error).message}; every action stops, campaigning again`);
      this.onChange(false);
    });
    this.onChange(true);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const held = this.held;
    this.held = undefined;
    await held?.release().catch(() => undefined);
  }
}
