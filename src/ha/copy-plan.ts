import type { CopyPlan } from '../engines/sqlite/replication.js';
import type { Leadership } from '../state/leadership.js';
import type { StateCopy } from '../state/state-copy.js';
import type { StateStore } from '../state/store.js';

export interface CopyPlanDeps {
  store: StateStore;
  state: StateCopy;
  running: boolean;
  /** Some enabled database is a SQLite file (else there is nothing to copy, ever). */
  hasSqlite: boolean;
  primaryUp(name: string): boolean;
  failoverUnderWay(): boolean;
  isLeader(): boolean;
  ownLeadership(): Leadership | undefined;
}

/**
 * What the periodic copy does now, from the shared state read afresh: another
 * process (the CLI) may have switched since the last refresh, and a copy of
 * the old primary over the new one would undo the writes made there since.
 * Only a process that may copy reads it (a store request every sync_interval):
 * a follower, or a sidecar without SQLite databases, goes by its watched copy.
 */
export async function copyPlan(deps: CopyPlanDeps): Promise<CopyPlan> {
  const { store, state, running } = deps;
  const mayCopy = deps.hasSqlite && (!running || deps.isLeader());
  const { epoch, demoted } = mayCopy ? await state.refresh() : state.current();
  const primary = state.primary();
  const up = primary !== undefined && deps.primaryUp(primary);
  return {
    primary: up ? primary : undefined,
    exclude: [...demoted, ...(primary ? [primary] : [])],
    // Only the leader copies (a sidecar that is not started copies only when asked: copyOnce).
    allowed: !deps.failoverUnderWay() && !state.problem && (!running || deps.isLeader()),
    release: running && !deps.isLeader(),
    epoch,
    stillValid: async () => {
      const now = await store.read();
      if (now.epoch !== epoch) return `the primary changed (epoch ${epoch} -> ${now.epoch})`;
      if (deps.failoverUnderWay()) return 'a failover is under way';
      const own = deps.ownLeadership();
      if (running && !own) return 'this sidecar is no longer the leader';
      const lease = await store.leaseHolder();
      return lease && lease.holder !== own?.holder ? `a failover is under way (${lease.holder} holds the leadership)` : undefined;
    },
  };
}
