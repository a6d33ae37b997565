import type { Config } from '../config/load.js';
import type { ClusterState } from '../state/store.js';

/**
 * The current primary: the last switch recorded in the state store, else the
 * config's primary. A recorded primary no longer in the config (or disabled)
 * falls back to the config's.
 */
export function primaryOf(state: ClusterState, config: Config): string | undefined {
  if (state.primary && config.topology.get(state.primary)?.enabled) return state.primary;
  return config.topology.configuredPrimary()?.name;
}

export function autoFailoverOf(state: ClusterState, config: Config): boolean {
  return state.autoFailover ?? config.failover.enable_auto_failover;
}
