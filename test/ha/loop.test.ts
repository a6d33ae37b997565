/**
 * The HA loop's requests when idle, on a real etcd cluster: the leader learns of
 * new intents from the store's watch instead of asking for them on every tick,
 * and still carries one out at once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../../src/config/load.js';
import { HaLoop } from '../../src/ha/loop.js';
import { silentLogger } from '../../src/log.js';
import { EtcdStateStore } from '../../src/state/etcd-store.js';
import type { ClusterState } from '../../src/state/store.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/failover.js';

/** Longer than the test: intents are not found by the loop's once-a-TTL safety poll. */
const TTL_MS = 60_000;

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
