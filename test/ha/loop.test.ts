/**
 * The HA loop's requests when idle, on a real etcd cluster: the leader learns of
 * new intents from the store's watch instead of asking for them on every tick,
 * and still carries one out at once; a follower learns of the leader key and the
 * members from it instead of reading them on its clock, and still leads at once
 * when the leader goes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../../src/config/load.js';
import { HaLoop } from '../../src/ha/loop.js';
import { silentLogger } from '../../src/log.js';
import { EtcdStateStore } from '../../src/state/etcd-store.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { sightingOf } from '../../src/ha/member-view.js';
import type { DatabaseHealth } from '../../src/monitor/health.js';
import type { ClusterState, FailoverRecord, StateStore } from '../../src/state/store.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { tempFolder, waitFor } from '../support/failover.js';

/** Longer than the test: intents are not found by the loop's once-a-TTL safety poll. */
const TTL_MS = 60_000;

/** A loop on its own store and watch, as a sidecar runs one; `ttlMs` its lease. */
function loopOn(
  store: StateStore,
  member: string,
  ttlMs: number,
  more: { healths?: () => DatabaseHealth[]; runFailover?: () => Promise<FailoverRecord>; primary?: string } = {},
): { loop: HaLoop; stop(): Promise<void> } {
  let state: ClusterState = { primary: undefined, epoch: 0, demoted: [], autoFailover: undefined, lastAutoFailoverAt: undefined };
  const watch = store.watch((s) => (state = s));
  const loop = new HaLoop({
    config: { failover: { detection_threshold: 3, cooldown: 0, retry_delay: 0 } } as unknown as Config,
    store,
    log: silentLogger(),
    member,
    holder: `${member}/1.1`,
    ttlMs,
    claimEveryMs: 1000,
    claimWaitMs: 30_000,
    state: () => state,
    currentPrimary: () => more.primary ?? state.primary,
    autoFailoverEnabled: () => true,
    storeProblem: () => undefined,
    healths: more.healths ?? (() => []),
    lagSeconds: () => undefined,
    failoverUnderWay: () => false,
    runFailover: more.runFailover ?? (() => Promise.reject(new Error('not in this test'))),
    fenceResurrected: () => Promise.resolve(),
    execute: () => Promise.resolve({ ok: true, message: 'done' }),
    onLeadership: () => undefined,
  });
  return {
    loop,
    stop: async () => {
      await loop.stop();
      watch.stop();
    },
  };
}

describe('the HA loop on etcd, idle', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
  });
  after(() => cluster?.destroy());

  test('the leader does not poll for intents on every tick, yet claims a new one as soon as it is submitted', async (t) => {
    const store = new EtcdStateStore({ endpoints: cluster.endpoints, prefix: `/dr-loop/${randomUUID()}/`, timeoutMs: 5_000 });
    let claims = 0;
    const claimIntent = store.claimIntent.bind(store);
    store.claimIntent = (holder) => (claims++, claimIntent(holder));
    let state: ClusterState = { primary: undefined, epoch: 0, demoted: [], autoFailover: undefined, lastAutoFailoverAt: undefined };
    const watch = store.watch((s) => (state = s));
    const executed: string[] = [];
    const loop = new HaLoop({
      config: {} as Config,
      store,
      log: silentLogger(),
      member: 'm1',
      holder: 'm1/1.1',
      ttlMs: TTL_MS,
      // As often as it ticks: the old loop asked the store for intents five times a second.
      claimEveryMs: 200,
      claimWaitMs: 30_000,
      state: () => state,
      currentPrimary: () => state.primary,
      autoFailoverEnabled: () => true,
      storeProblem: () => undefined,
      healths: () => [],
      lagSeconds: () => undefined,
      failoverUnderWay: () => false,
      runFailover: () => Promise.reject(new Error('not in this test')),
      fenceResurrected: () => Promise.resolve(),
      execute: (kind) => (executed.push(kind), Promise.resolve({ ok: true, message: 'done' })),
      onLeadership: () => undefined,
    });
    t.after(async () => {
      await loop.stop();
      watch.stop();
      await store.close();
    });
    await loop.start();
    assert.ok(loop.isLeader(), 'a lone loop leads from its start');
    // The first claims (at the start) are done once the watch is confirmed and the loop has ticked a while.
    await waitFor('the watch confirmed', 10_000, () => watch.confirmedAt() !== undefined);
    const before = claims;
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // an observation window: ten ticks of the loop
    assert.ok(claims - before <= 1, `the idle leader asked for intents ${claims - before} times in 2 s (ticks every 200 ms)`);

    const id = await store.submitIntent({ kind: 'auto_failover', params: { enabled: true }, submittedBy: 'test' });
    const done = await waitFor('the intent finished', 20_000, async () => {
      const intent = await store.intent(id);
      return intent?.state === 'finished' ? intent : undefined;
    });
    assert.deepEqual(executed, ['auto_failover']);
    assert.equal(done.outcome?.ok, true);
  });
});

describe('a follower on etcd, idle', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
  });
  after(() => cluster?.destroy());

  test('follows the leader key and the members through the watch, and leads as soon as the leader gives up', async (t) => {
    const prefix = `/dr-loop/${randomUUID()}/`;
    const stores = [0, 1].map(() => new EtcdStateStore({ endpoints: cluster.endpoints, prefix, timeoutMs: 5_000 }));
    t.after(() => Promise.all(stores.map((s) => s.close())));
    const [leaderStore, followerStore] = stores as [EtcdStateStore, EtcdStateStore];
    let campaigns = 0;
    let memberReads = 0;
    const acquire = followerStore.acquireLease.bind(followerStore);
    followerStore.acquireLease = (holder, ttlMs) => (campaigns++, acquire(holder, ttlMs));
    const members = followerStore.members.bind(followerStore);
    followerStore.members = () => (memberReads++, members());

    // A TTL of 3 s: the loop used to read the leader key every second and the members every TTL.
    const a = loopOn(leaderStore, 'a', 3_000);
    await a.loop.start();
    assert.ok(a.loop.isLeader());
    const b = loopOn(followerStore, 'b', 3_000);
    t.after(() => Promise.all([a.stop(), b.stop()]));
    await b.loop.start();
    assert.ok(!b.loop.isLeader());
    await waitFor('the follower sees both members', 10_000, () => b.loop.members().length === 2);

    const before = { campaigns, memberReads };
    await new Promise((resolve) => setTimeout(resolve, 6_000)); // an observation window: two TTLs
    const tried = campaigns - before.campaigns;
    const read = memberReads - before.memberReads;
    // Once a TTL as a safety net: 2 in two TTLs, 3 when both ends of the window catch one; polling every second tried 5 or 6 times.
    assert.ok(tried <= 3, `the idle follower tried for the lease ${tried} times in 6 s (once a TTL at most, as a safety net)`);
    assert.ok(read <= 1, `the idle follower read the members ${read} times in 6 s`);
    assert.equal(b.loop.members().length, 2, 'the members as the watch keeps them');

    // The leader gives up its lease: the key's deletion reaches the follower on the stream.
    await a.stop();
    await waitFor('the follower leads', 10_000, () => b.loop.isLeader());
    await waitFor('the stopped leader is no member any more', 10_000, () => b.loop.members().length === 1);
  });
});

/** The primary `pg` as a probe leaves it: up, or down after `failures` failed probes in a row. */
function healthOf(status: 'up' | 'down', failures: number): DatabaseHealth {
  const now = Date.now();
  return {
    name: 'pg',
    status,
    last: status === 'up' ? { up: true, checkedAt: now, responseTimeSeconds: 0.001 } : { up: false, checkedAt: now, responseTimeSeconds: 0.001, error: 'connection refused' },
    consecutiveFailures: failures,
    errorCount: failures,
    probes: 10,
    lastUpAt: now,
    lastDownAt: status === 'down' ? now : undefined,
    lastError: status === 'down' ? 'connection refused' : undefined,
    failingSince: status === 'down' ? now - 3000 : undefined,
  };
}

describe('a failover held for want of a majority, on etcd', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
  });
  after(() => cluster?.destroy());

  test('goes ahead as soon as another member publishes that it sees the primary down, not at the next probe', async (t) => {
    const prefix = `/dr-loop/${randomUUID()}/`;
    const stores = [0, 1].map(() => new EtcdStateStore({ endpoints: cluster.endpoints, prefix, timeoutMs: 5_000 }));
    t.after(() => Promise.all(stores.map((s) => s.close())));
    let leaderSees = healthOf('down', 3);
    let followerSees = healthOf('up', 0);
    const failovers: string[] = [];
    const a = loopOn(stores[0]!, 'a', 10_000, {
      primary: 'pg',
      healths: () => [leaderSees],
      runFailover: () => (failovers.push('a'), Promise.reject(new Error('recorded, not run'))),
    });
    await a.loop.start();
    assert.ok(a.loop.isLeader());
    const b = loopOn(stores[1]!, 'b', 10_000, { primary: 'pg', healths: () => [followerSees] });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    await b.loop.start();
    await waitFor('the leader sees both members', 10_000, () => a.loop.members().length === 2 && a.loop.members().every((m) => Object.keys(m.view.databases ?? {}).length > 0));

    // The leader's third failed probe: the follower still reaches the primary, so it holds.
    a.loop.onProbe(leaderSees, leaderSees);
    await waitFor('the leader holds', 10_000, () => /only 1 of 2 live members/.test(a.loop.heldWhy('pg') ?? ''));
    assert.deepEqual(failovers, []);

    // The follower's probe fails now; the leader probes nothing more in this test.
    followerSees = healthOf('down', 1);
    leaderSees = { ...leaderSees };
    b.loop.onProbe(followerSees, healthOf('up', 0));
    await waitFor('the leader fails over on the follower\'s published view', 10_000, () => failovers.length === 1);
  });
});

describe('a sidecar cut off from the store', () => {
  test('stops acting at the first failed call, yet answers /primary 503 only once the store has not answered for longer than the lease', () => {
    const loop = new HaLoop({
      config: { failover: { detection_threshold: 3, cooldown: 0, retry_delay: 0 } } as unknown as Config,
      store: {} as StateStore, // never called: the loop is not started
      log: silentLogger(),
      member: 'a',
      holder: 'a/1.1',
      ttlMs: 3_000,
      claimEveryMs: 1000,
      claimWaitMs: 30_000,
      state: () => ({ primary: 'primary', epoch: 1, demoted: [], autoFailover: undefined, lastAutoFailoverAt: undefined }),
      currentPrimary: () => 'primary',
      autoFailoverEnabled: () => true,
      storeProblem: () => undefined,
      healths: () => [],
      lagSeconds: () => undefined,
      failoverUnderWay: () => false,
      runFailover: () => Promise.reject(new Error('not in this test')),
      fenceResurrected: () => Promise.resolve(),
      execute: () => Promise.resolve({ ok: true, message: 'done' }),
      onLeadership: () => undefined,
    });
    const failedAt = Date.now();
    loop.storeFailed(new Error('etcd did not answer /v3/kv/txn within 1500 ms'));
    assert.match(loop.cutOff() ?? '', /did not answer/, 'acting stops at once');
    assert.equal(loop.unconfirmed(failedAt + 2_900), undefined, 'an etcd election inside the lease changes no routing answer');
    // Further failures inside the lease do not restart the clock.
    loop.storeFailed(new Error('etcd did not answer /v3/kv/range within 1500 ms'));
    assert.match(loop.unconfirmed(failedAt + 3_100) ?? '', /range within 1500 ms \(for 3\.\d s, longer than the lease\)/);
  });
});

describe("a sidecar's own view, as status shows it", () => {
  test('is what it just published, not what it read of the members a lease ago', async (t) => {
    const tmp = tempFolder('dr-loop-view-');
    t.after(() => tmp.cleanup());
    const store = new SqliteStateStore(path.join(tmp.dir, 'state.db'), { create: true });
    t.after(() => store.close());
    let status: 'up' | 'down' = 'up';
    // A lease far longer than the test: the members are read once, at the start, and not again.
    const a = loopOn(store, 'a', TTL_MS, { healths: () => [healthOf(status, status === 'up' ? 0 : 1)], primary: 'pg' });
    t.after(() => a.stop());
    await a.loop.start();
    const sees = () => sightingOf(a.loop.members().find((m) => m.name === 'a')?.view ?? {}, 'pg');
    a.loop.onProbe(healthOf('up', 0), healthOf('up', 0));
    await waitFor('its view of pg: up', 10_000, () => sees() === 'up');
    status = 'down';
    a.loop.onProbe(healthOf('down', 1), healthOf('up', 0));
    await waitFor('its view of pg: down, as published (changes go out at most once a second)', 10_000, () => sees() === 'down');
  });
});
