import fs from 'node:fs';
import { AbsentStateStore } from './absent-store.js';
import type { StateLocation } from './location.js';
import { SqliteStateStore } from './sqlite-store.js';
import type { StateStore } from './store.js';

/**
 * How a process opens the cluster state: `create` is start-monitoring's alone;
 * `require` refuses a missing store (every command that reads or changes the
 * cluster, and the library); `if-present` is for commands that only look.
 */
export type StoreOpening = 'create' | 'require' | 'if-present';

/** Opens the configured store; `onCreate` hears of a store that did not exist before. */
export function openStateStore(location: StateLocation, opening: StoreOpening, onCreate?: (file: string) => void): StateStore {
  const existed = fs.existsSync(location.path);
  if (!existed && opening === 'if-present') return new AbsentStateStore(location);
  const store = new SqliteStateStore(location.path, { create: opening === 'create', relativeTo: location.relativeTo });
  if (!existed) onCreate?.(location.path);
  return store;
}
