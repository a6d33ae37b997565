import type { StateConfig } from '../config/load.js';
import { EtcdStateStore } from './etcd-store.js';
import { SqliteStateStore } from './sqlite-store.js';
import type { StateStore } from './store.js';

/**
 * The state store the config names. An etcd call is bounded by half the lease
 * TTL, so a renewal that cannot get through is known to have failed while the
 * lease still runs.
 */
export function openStateStore(state: StateConfig): StateStore {
  if (state.backend === 'etcd') {
    const etcd = state.etcd;
    if (!etcd) throw new TypeError('state.backend is "etcd" but state.etcd is missing (the config loader should have refused it)');
    return new EtcdStateStore({ endpoints: etcd.endpoints, prefix: etcd.prefix, timeoutMs: (etcd.ttl * 1000) / 2 });
  }
  return new SqliteStateStore(state.path);
}
