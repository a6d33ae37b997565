import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { EtcdUnavailable } from '../../src/state/etcd-client.js';
import { EtcdStateStore } from '../../src/state/etcd-store.js';
import { LeadershipLost, takeLeadership } from '../../src/state/leadership.js';
import type { ClusterState } from '../../src/state/store.js';
import { waitFor } from '../support/failover.js';
import { startEtcdCluster, type EtcdCluster, type EtcdMember } from '../support/etcd.js';
import { alertRecord, historyRecord, clusterContract, storeContract } from './store-contract.js';

/** A prefix of its own per test: a fresh, empty state on the shared cluster. */
const freshPrefix = () => `/dr-contract/${randomUUID()}/`;

describe('the etcd state store keeps the StateStore contract (3-member cluster)', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
  });
  after(() => cluster?.destroy());

  const factory = () => {
    const prefix = freshPrefix();
    return { open: () => new EtcdStateStore({ endpoints: cluster.endpoints, prefix, timeoutMs: 5_000 }) };
  };
  storeContract(factory);
  clusterContract(factory);
});

/** The member etcd elected leader (killing it forces an election as well). */
async function raftLeader(cluster: EtcdCluster): Promise<EtcdMember> {
  for (const m of cluster.members) {
    if (m.pid === undefined || m.paused) continue;
    const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    const status = (await res.json()) as { header: { member_id: string }; leader: string };
    if (status.header.member_id === status.leader) return m;
  }
  throw new Error('no etcd leader');
}

describe('the etcd state store when members fail', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
  });
  after(() => cluster?.destroy());

  /** Brings every member back, so the next test starts from a whole cluster. */
  async function heal(): Promise<void> {
    for (const m of cluster.members) {
      if (m.paused) cluster.resume(m);
      if (m.pid === undefined) await cluster.start(m);
    }
    await cluster.waitHealthy();
  }

  test('one of three members killed (the raft leader, tried first): every operation keeps working', async (t) => {
    t.after(heal);
    const leader = await raftLeader(cluster);
    const endpoints = [leader.clientUrl, ...cluster.endpoints.filter((e) => e !== leader.clientUrl)];
    const store = new EtcdStateStore({ endpoints, prefix: freshPrefix(), timeoutMs: 10_000 });
    t.after(() => store.close());
    assert.ok(await store.commitSwitch(0, 'primary', 'secondary1', 'auto', 1));
    await cluster.kill(leader);
    assert.equal((await store.read()).primary, 'secondary1');
    assert.ok(await store.commitSwitch(1, 'secondary1', 'primary', 'manual', 2));
    assert.equal((await store.acquireLease('A', 60_000))?.holder, 'A');
    assert.ok((await store.appendHistory(historyRecord('manual', 'success', 1))) > 0);
    assert.equal(await store.recordAlert(alertRecord('k', 'w')), true);
    assert.deepEqual(await store.read(), { primary: 'primary', epoch: 2, autoFailover: undefined, demoted: ['secondary1'], lastAutoFailoverAt: 1 });
  });

  test('one member frozen (SIGSTOP, tried first): answered by the others within the call timeout', async (t) => {
    t.after(heal);
    const frozen = cluster.members[0]!;
    const store = new EtcdStateStore({ endpoints: cluster.endpoints, prefix: freshPrefix(), timeoutMs: 6_000 });
    t.after(() => store.close());
    cluster.pause(frozen);
    assert.ok(await store.commitSwitch(0, 'primary', 'secondary1', 'auto', 1));
    assert.equal((await store.read()).epoch, 1);
  });

  test('two of three members down (no quorum): a clear error naming the endpoints (passwords masked), within the timeout; back when quorum returns', async (t) => {
    t.after(heal);
    const endpoints = cluster.endpoints.map((e) => e.replace('http://', 'http://root:hunter2@'));
    const store = new EtcdStateStore({ endpoints, prefix: freshPrefix(), timeoutMs: 3_000 });
    t.after(() => store.close());
    assert.ok(await store.commitSwitch(0, 'primary', 'secondary1', 'auto', 1), 'works with credentials on a cluster without authentication');
    await cluster.kill(cluster.members[1]!);
    await cluster.kill(cluster.members[2]!);
    for (const operation of [() => store.read(), () => store.commitSwitch(1, 'secondary1', 'primary', 'manual', 2), () => store.acquireLease('A', 10_000)]) {
      const started = Date.now();
      const error = await operation().then(
        () => assert.fail('answered without quorum'),
        (e: unknown) => e,
      );
      const took = Date.now() - started;
      assert.ok(error instanceof EtcdUnavailable, String(error));
      for (const m of cluster.members) assert.ok(error.message.includes(m.clientUrl.replace('http://', 'http://root:***@')), error.message);
      assert.ok(!error.message.includes('hunter2'), error.message);
      assert.match(error.message, /majority of the etcd members/);
      t.diagnostic(`no quorum: gave up after ${took} ms (call timeout 3000 ms)`);
      // Generous: the bound is the 3 s timeout plus one short pause; a hang would be etcd's own 7 s+ or forever.
      assert.ok(took < 6_000, `gave up after ${took} ms`);
    }
    await cluster.start(cluster.members[1]!);
    const state = await store.read();
    assert.equal(state.epoch, 1, 'nothing was switched without quorum');
    assert.ok(await store.commitSwitch(1, 'secondary1', 'primary', 'manual', 2), 'the same store carries on once quorum is back');
  });

  test('the member a watch streams from killed (a quorum left): the watch reports no error and sees the next change', async (t) => {
    t.after(heal);
    // The first endpoint is tried first: the stream runs there.
    const store = new EtcdStateStore({ endpoints: cluster.endpoints, prefix: freshPrefix(), timeoutMs: 6_000, watchCheckMs: 1_000 });
    const other = new EtcdStateStore({ endpoints: [...cluster.endpoints].reverse(), prefix: store.options.prefix, timeoutMs: 5_000 });
    t.after(() => store.close());
    t.after(() => other.close());
    const seen: ClusterState[] = [];
    const errors: Error[] = [];
    const watch = store.watch((state) => seen.push(state), (error) => errors.push(error));
    t.after(() => watch.stop());
    await waitFor('the initial state', 30_000, () => seen.length === 1);
    await cluster.kill(cluster.members[0]!);
    await other.commitSwitch(0, 'primary', 'secondary1', 'auto', 1);
    await waitFor('the watch to see the switch made after the member died', 30_000, () => seen.at(-1)?.epoch === 1, 50);
    // A watch error makes a sidecar cut off (/primary 503): a broken stream with a quorum left is none.
    assert.deepEqual(errors.map((e) => e.message), []);
  });

  test('quorum lost: the leadership is lost at once, the watch reports the error; quorum back: the watch carries on', async (t) => {
    t.after(heal);
    const ttl = 4_000;
    const store = new EtcdStateStore({ endpoints: cluster.endpoints, prefix: freshPrefix(), timeoutMs: ttl / 2, watchCheckMs: 1_000 });
    const other = new EtcdStateStore({ endpoints: cluster.endpoints, prefix: (store.options.prefix), timeoutMs: 5_000 });
    t.after(() => store.close());
    t.after(() => other.close());
    const leader = await takeLeadership(store, 'A', ttl);
    assert.ok(leader);
    const seen: ClusterState[] = [];
    const errors: Error[] = [];
    const watch = store.watch((state) => seen.push(state), (error) => errors.push(error));
    t.after(() => watch.stop());
    await waitFor('the initial state', 30_000, () => seen.length === 1);
    await cluster.kill(cluster.members[1]!);
    await cluster.kill(cluster.members[2]!);
    await waitFor('the leadership to be lost', 30_000, () => leader.signal.aborted, 50);
    assert.ok(leader.signal.reason instanceof LeadershipLost);
    assert.match((leader.signal.reason as Error).message, /a renewal failed: etcd did not answer/);
    await waitFor('the watch to report that it cannot tell', 30_000, () => errors.length > 0, 50);
    await cluster.start(cluster.members[1]!);
    await other.commitSwitch(0, 'primary', 'secondary1', 'auto', 1);
    await waitFor('the watch to see the switch made after quorum came back', 30_000, () => seen.at(-1)?.epoch === 1, 50);
  });
});
