import type { Config } from '../config/load.js';
import { autoFailoverOf, primaryOf } from '../failover/primary.js';
import type { Logger } from '../log.js';
import type { ClusterState, StateStore } from './store.js';

const EMPTY_STATE: ClusterState = { primary: undefined, epoch: 0, autoFailover: undefined, demoted: [], lastAutoFailoverAt: undefined };

/**
 * This process's copy of the cluster state: kept by the store's watch in a
 * running sidecar (no store round trip per question), read afresh by a
 * command. It also knows when the store itself cannot be trusted (its file
 * lost and not written back): then nothing acts.
 */
export class StateCopy {
  private state: ClusterState = EMPTY_STATE;
  /** Why the state store cannot be trusted right now, or undefined. */
  problem: string | undefined;

  constructor(
    private readonly config: Config,
    private readonly store: StateStore,
    private readonly log: Logger,
    /** The running sidecar holds the store open and writes a lost file back; a command follows the file at the path. */
    private readonly running: () => boolean,
  ) {}

  current(): ClusterState {
    return this.state;
  }

  /** What the watch delivered. */
  set(state: ClusterState): void {
    this.state = state;
  }

  /** The database writes go to now. */
  primary(): string | undefined {
    return primaryOf(this.state, this.config);
  }

  autoFailover(): boolean {
    return autoFailoverOf(this.state, this.config);
  }

  /** Re-reads the shared state: another process (the CLI, a second sidecar) may have switched. */
  async refresh(): Promise<ClusterState> {
    await this.checkLocation();
    this.state = await this.store.read();
    return this.state;
  }

  /**
   * The running sidecar writes back a state file removed or replaced under it
   * (it holds the cluster's state open); until that succeeds it does not act.
   * Other processes follow the file at the path.
   */
  private async checkLocation(): Promise<void> {
    if (!this.store.checkLocation) return;
    if (!this.running()) {
      const followed = await this.store.checkLocation('follow');
      if (followed) this.log.warn(`disaster-recovery: ${followed}`);
      return;
    }
    try {
      const done = await this.store.checkLocation('write-back');
      if (done) this.log.error({ state: this.store.location }, `disaster-recovery: ${done}`);
      if (this.problem) this.log.warn({ state: this.store.location }, 'disaster-recovery: the state store is back in place; the sidecar acts again');
      this.problem = undefined;
    } catch (error) {
      const problem = `the state file was removed or replaced and could not be written back: ${(error as Error).message}`;
      if (this.problem !== problem) this.log.error({ state: this.store.location }, `disaster-recovery: ${problem}; no failover and no copies until it can`);
      this.problem = problem;
    }
  }
}
