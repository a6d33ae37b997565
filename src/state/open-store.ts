import fs from 'node:fs';
import type { StateConfig } from '../config/load.js';
import { AbsentStateStore } from './absent-store.js';
import { EtcdStateStore } from './etcd-store.js';
import { SqliteStateStore } from './sqlite-store.js';
import type { StateStore } from './store.js';

/**
 * How a process opens the cluster state: `create` is start-monitoring's alone;
 * `require` refuses a missing store (every command that reads or changes the
 * cluster, and the library); `if-present` is for commands that only look.
 * An etcd cluster is shared by every sidecar and command alike: there is no
 * file to be missing, so the opening mode applies to the SQLite store only.
 */
export type StoreOpening = 'create' | 'require' | 'if-present';

/** Opens the configured store; `onCreate` hears of a SQLite store that did not exist before. */
export function openStateStore(state: StateConfig, opening: StoreOpening, onCreate?: (file: string) => void): StateStore {
  if (state.backend === 'etcd') {
    const etcd = state.etcd;
    if (!etcd) throw new TypeError('state.backend is "etcd" but state.etcd is missing (the config loader should have refused it)');
    // An etcd call is bounded by half the lease TTL, so a renewal that cannot get through is known to have failed while the lease still runs.
    // A watch confirms its state three times per TTL: a writer trusts it for one TTL (state/confirmed-state.ts), so one lost check is no gap.
    return new EtcdStateStore({ endpoints: etcd.endpoints, prefix: etcd.prefix, timeoutMs: (etcd.ttl * 1000) / 2, watchCheckMs: (etcd.ttl * 1000) / 3 });
  }
  const existed = fs.existsSync(state.path);
  if (!existed && opening === 'if-present') return new AbsentStateStore(state);
  const store = new SqliteStateStore(state.path, { create: opening === 'create', relativeTo: state.relativeTo });
  if (!existed) onCreate?.(state.path);
  return store;
}
