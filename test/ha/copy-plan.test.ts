/**
 * The periodic copy's plan reads the state store (a request every sync_interval)
 * only in a process that may copy: the leader or a command, with SQLite databases.
 * A follower, or a sidecar of PostgreSQL databases only, goes by its watched copy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig, type Config } from '../../src/config/load.js';
import { copyPlan } from '../../src/ha/copy-plan.js';
import { silentLogger } from '../../src/log.js';
import { StateCopy } from '../../src/state/state-copy.js';
import type { ClusterState, StateStore } from '../../src/state/store.js';

const config: Config = parseConfig(
  `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///data/p.db" }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///data/s1.db" }
`,
  '/srv/app/config.yaml',
  {},
  '/srv/app',
);

/** A store that only counts its reads: the plan's decision is what is under test. */
function countingStore(): { store: StateStore; reads(): number } {
  let reads = 0;
  const state: ClusterState = { primary: 'secondary1', epoch: 4, autoFailover: undefined, demoted: ['primary'], lastAutoFailoverAt: undefined };
  const store = { read: () => (reads++, Promise.resolve(state)) } as unknown as StateStore;
  return { store, reads: () => reads };
}

async function planOf(role: { running: boolean; leader: boolean; hasSqlite: boolean }) {
  const { store, reads } = countingStore();
  const state = new StateCopy(config, store, silentLogger(), () => role.running);
  // What the watch delivered a moment ago.
  state.set({ primary: 'secondary1', epoch: 4, autoFailover: undefined, demoted: ['primary'], lastAutoFailoverAt: undefined });
  const plan = await copyPlan({
    store,
    state,
    running: role.running,
    hasSqlite: role.hasSqlite,
    primaryUp: () => true,
    failoverUnderWay: () => false,
    isLeader: () => role.leader,
    ownLeadership: () => undefined,
  });
  return { plan, reads: reads() };
}

test('copy plan: the leader with SQLite databases reads the state as of now', async () => {
  const { plan, reads } = await planOf({ running: true, leader: true, hasSqlite: true });
  assert.equal(reads, 1);
  assert.equal(plan.allowed, true);
  assert.equal(plan.primary, 'secondary1');
  assert.deepEqual(plan.exclude, ['primary', 'secondary1']);
});

test('copy plan: a command (copyOnce) reads it too', async () => {
  const { reads } = await planOf({ running: false, leader: false, hasSqlite: true });
  assert.equal(reads, 1);
});

test('copy plan: a follower copies nothing and goes by its watched copy: no store request', async () => {
  const { plan, reads } = await planOf({ running: true, leader: false, hasSqlite: true });
  assert.equal(reads, 0);
  assert.equal(plan.allowed, false);
  assert.equal(plan.release, true, 'and lets go of the primary');
  assert.equal(plan.epoch, 4);
});

test('copy plan: a leader without SQLite databases never copies: no store request', async () => {
  const { reads } = await planOf({ running: true, leader: true, hasSqlite: false });
  assert.equal(reads, 0);
});
