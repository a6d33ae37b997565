/**
 * The contract every StateStore keeps, as one suite run against each
 * implementation (Litestream's RunWithReplicaClient): the SQLite file and etcd.
 * Two store instances opened on the same state stand for two processes.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test, type TestContext } from 'node:test';
import { awaitIntent } from '../../src/state/intents.js';
import { LeadershipLost, takeLeadership } from '../../src/state/leadership.js';
import type { AlertRecord, ClusterState, FailoverRecord, FailoverResult, FailoverTrigger, Intent, StateStore } from '../../src/state/store.js';
import { waitFor } from '../support/failover.js';
import { sleep } from '../support/sqlite-cluster.js';

/** One empty cluster state; every `open()` is another process on it. */
export interface StoreUnderTest {
  open(): StateStore;
}

/** Makes a fresh, empty state for one test (a new file, a new key prefix). */
export type StoreFactory = (t: TestContext) => Promise<StoreUnderTest> | StoreUnderTest;

const EMPTY: ClusterState = { primary: undefined, epoch: 0, autoFailover: undefined, demoted: [], lastAutoFailoverAt: undefined };

export function historyRecord(trigger: FailoverTrigger, result: FailoverResult, n: number): FailoverRecord {
  return {
    epoch: n,
    startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    finishedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n + 1)).toISOString(),
    from: 'primary',
    to: 'secondary1',
    trigger,
    reason: `attempt ${n}`,
    result,
    error: result === 'success' ? null : 'it failed',
    dataSync: null,
    phases: { choose: n },
  };
}

export function alertRecord(key: string, why: string): AlertRecord {
  return { key, receivedAt: new Date().toISOString(), alertname: 'DrTest', database: 'primary', status: 'firing', action: 'none', outcome: 'recorded', why, result: null };
}

/** Two "processes" on one fresh state, closed after the test. */
async function twoProcesses(factory: StoreFactory, t: TestContext): Promise<[StateStore, StateStore]> {
  const sut = await factory(t);
  const a = sut.open();
  const b = sut.open();
  t.after(async () => {
    await a.close();
    await b.close();
  });
  return [a, b];
}

/** Registers the contract's tests (call inside a describe). */
export function storeContract(factory: StoreFactory): void {
  const two = (t: TestContext) => twoProcesses(factory, t);

  test('a fresh state: the config decides (no primary, epoch 0, no switch), no lease, no history, no alerts', async (t) => {
    const [a] = await two(t);
    assert.deepEqual(await a.read(), EMPTY);
    assert.equal(await a.leaseHolder(), undefined);
    assert.deepEqual(await a.history(10), []);
    assert.deepEqual(await a.historyCounts(), []);
    assert.deepEqual(await a.alerts(10), []);
  });

  test('the auto-failover switch, set by one process, is read by another', async (t) => {
    const [a, b] = await two(t);
    await a.setAutoFailover(false);
    assert.equal((await b.read()).autoFailover, false);
    await b.setAutoFailover(true);
    assert.equal((await a.read()).autoFailover, true);
  });

  test('a switch: primary, epoch + 1, the old primary demoted, the new one reinstated; reinstate clears the demotion', async (t) => {
    const [a, b] = await two(t);
    const first = await a.commitSwitch(0, 'primary', 'secondary1', 'auto', 1_000);
    const expected = { primary: 'secondary1', epoch: 1, autoFailover: undefined, demoted: ['primary'], lastAutoFailoverAt: 1_000 };
    assert.deepEqual(first, expected);
    assert.deepEqual(await b.read(), expected, 'the other process reads the switch');
    // A manual switch back: not an automatic one (the cooldown's time stays), the new primary leaves the demoted set.
    const back = await b.commitSwitch(1, 'secondary1', 'primary', 'manual', 2_000);
    assert.deepEqual(back, { primary: 'primary', epoch: 2, autoFailover: undefined, demoted: ['secondary1'], lastAutoFailoverAt: 1_000 });
    const third = await a.commitSwitch(2, 'primary', 'secondary2', 'alert', 3_000);
    assert.deepEqual(third?.demoted, ['secondary1', 'primary'], 'demoted in the order they were demoted');
    assert.equal(third?.lastAutoFailoverAt, 3_000);
    await b.reinstate('secondary1');
    assert.deepEqual((await a.read()).demoted, ['primary']);
    await a.reinstate('not-demoted');
    assert.deepEqual((await b.read()).demoted, ['primary']);
  });

  test('a SQLite identity: the newest generation wins whichever process writes, the same generation moves forward', async (t) => {
    const [a, b] = await two(t);
    const identity = { dev: 1, ino: 100, born: 1000, pages: 40, changeCounter: 12, tables: 2 };
    const record = { database: '主库', file: '/x/p.db', identity, since: 1, generation: 10, source: 'copy' };
    await a.recordSqliteIdentity(record);
    await b.recordSqliteIdentity({ ...record, generation: 9, source: 'observed' });
    assert.equal((await b.sqliteIdentities())[0]?.source, 'copy', 'an older generation does not overwrite');
    await b.recordSqliteIdentity({ ...record, identity: { ...identity, pages: 80 }, source: 'observed' });
    assert.equal((await a.sqliteIdentities())[0]?.identity.pages, 80, 'the same generation moves forward');
    await a.recordSqliteIdentity({ ...record, database: 'secondary1', generation: 3, source: 'first-seen' });
    await b.recordSqliteIdentity({ ...record, generation: 11, source: 'accepted' });
    const seen = (await a.sqliteIdentities()).map((r) => [r.database, r.source, r.generation]);
    assert.deepEqual(seen.sort(), [['secondary1', 'first-seen', 3], ['主库', 'accepted', 11]].sort());
  });

  test('a switch that keeps the former primary a candidate (a lossless switchover of a kept-warm engine) demotes nobody', async (t) => {
    const [a, b] = await two(t);
    const state = await a.commitSwitch(0, 'primary', 'secondary1', 'manual', 1_000, { demoteFrom: false });
    assert.deepEqual(state, { primary: 'secondary1', epoch: 1, autoFailover: undefined, demoted: [], lastAutoFailoverAt: undefined });
    assert.deepEqual((await b.read()).demoted, []);
  });

  test('a switch from a stale epoch is refused and changes nothing', async (t) => {
    const [a, b] = await two(t);
    await a.commitSwitch(0, 'primary', 'secondary1', 'auto', 1_000);
    assert.equal(await b.commitSwitch(0, 'primary', 'secondary2', 'auto', 2_000), undefined);
    assert.equal(await b.commitSwitch(5, 'primary', 'secondary2', 'auto', 2_000), undefined, 'an epoch from the future too');
    assert.deepEqual(await b.read(), { primary: 'secondary1', epoch: 1, autoFailover: undefined, demoted: ['primary'], lastAutoFailoverAt: 1_000 });
  });

  test('two processes switching from the same epoch at once: exactly one wins, every round', async (t) => {
    const [a, b] = await two(t);
    for (let epoch = 0; epoch < 8; epoch++) {
      const [ra, rb] = await Promise.all([a.commitSwitch(epoch, 'p', `a${epoch}`, 'auto', epoch), b.commitSwitch(epoch, 'p', `b${epoch}`, 'auto', epoch)]);
      assert.equal([ra, rb].filter(Boolean).length, 1, `round ${epoch}: ${JSON.stringify([ra, rb])}`);
      const winner = (ra ?? rb)!;
      assert.equal(winner.epoch, epoch + 1);
      assert.deepEqual(await a.read(), winner, 'the state is the winner\'s');
    }
  });

  test('the lease: one holder at a time across processes, renewed by its holder, released only by it', async (t) => {
    const [a, b] = await two(t);
    const taken = await a.acquireLease('A', 60_000);
    assert.equal(taken?.holder, 'A');
    assert.ok(taken!.expiresAt > Date.now() + 30_000, 'it runs for about the ttl');
    assert.equal(await b.acquireLease('B', 60_000), undefined, 'another holder is kept out');
    assert.equal((await b.leaseHolder())?.holder, 'A', 'and told who holds it');
    const renewed = await a.acquireLease('A', 60_000);
    assert.equal(renewed?.holder, 'A');
    assert.ok(renewed!.expiresAt >= taken!.expiresAt - 1_000, 'a renewal does not shorten it');
    await b.releaseLease('B');
    assert.equal((await a.leaseHolder())?.holder, 'A', 'a release by another holder does nothing');
    await a.releaseLease('A');
    assert.equal(await b.leaseHolder(), undefined);
    assert.equal((await b.acquireLease('B', 60_000))?.holder, 'B', 'free again once released');
  });

  test('the lease: two processes taking it at once, exactly one gets it, every round', async (t) => {
    const [a, b] = await two(t);
    for (let round = 0; round < 6; round++) {
      const [la, lb] = await Promise.all([a.acquireLease(`A${round}`, 60_000), b.acquireLease(`B${round}`, 60_000)]);
      assert.equal([la, lb].filter(Boolean).length, 1, `round ${round}`);
      const winner = (la ?? lb)!.holder;
      assert.equal((await a.leaseHolder())?.holder, winner);
      await (la ? a : b).releaseLease(winner);
    }
  });

  test('the lease expires when its holder stops renewing: another takes it, the old holder cannot renew', async (t) => {
    const [a, b] = await two(t);
    assert.ok(await a.acquireLease('A', 2_000));
    const lease = await waitFor('the lease to expire and B to take it', 30_000, () => b.acquireLease('B', 60_000), 200);
    assert.equal(lease.holder, 'B');
    assert.equal(await a.acquireLease('A', 2_000), undefined);
    assert.equal((await a.leaseHolder())?.holder, 'B');
  });

  test('history: ids grow across processes, newest first, limited, counted by trigger and result', async (t) => {
    const [a, b] = await two(t);
    const ids: number[] = [];
    ids.push(await a.appendHistory(historyRecord('auto', 'success', 1)));
    ids.push(await b.appendHistory(historyRecord('manual', 'refused', 2)));
    ids.push(await a.appendHistory(historyRecord('auto', 'success', 3)));
    ids.push(await b.appendHistory(historyRecord('alert', 'failed', 4)));
    assert.deepEqual([...ids].sort((x, y) => x - y), ids, 'strictly increasing');
    assert.equal(new Set(ids).size, 4);
    const all = await b.history(10);
    assert.deepEqual(all.map((r) => r.reason), ['attempt 4', 'attempt 3', 'attempt 2', 'attempt 1']);
    assert.deepEqual(all.map((r) => r.id), [...ids].reverse());
    assert.deepEqual(all[3], { ...historyRecord('auto', 'success', 1), id: ids[0] }, 'a record reads back as written');
    assert.deepEqual((await a.history(2)).map((r) => r.reason), ['attempt 4', 'attempt 3']);
    const counts = (await a.historyCounts()).map((c) => `${c.trigger}/${c.result}=${c.count}`).sort();
    assert.deepEqual(counts, ['alert/failed=1', 'auto/success=2', 'manual/refused=1']);
    await b.appendHistory(historyRecord('auto', 'success', 5));
    assert.ok((await a.historyCounts()).some((c) => c.trigger === 'auto' && c.result === 'success' && c.count === 3), 'counts follow appends of the other process');
    // A drill's own entry keeps its report, and is no failover: dr_failovers_total does not count it (its switches are entries of their own).
    const report = { kind: 'restore' as const, result: 'success' as const, detail: 'restored', requestedBy: 'manual' as const, durationSeconds: 1.5 };
    const drillId = await b.appendHistory({ ...historyRecord('drill', 'success', 6), drill: report });
    assert.deepEqual((await a.history(1))[0], { ...historyRecord('drill', 'success', 6), drill: report, id: drillId });
    assert.equal((await a.historyCounts()).find((c) => c.trigger === 'drill'), undefined);
  });

  test('history: concurrent appends from two processes get distinct ids, all kept', async (t) => {
    const [a, b] = await two(t);
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).appendHistory(historyRecord('auto', 'success', i))));
    assert.equal(new Set(ids).size, 12);
    const kept = await a.history(100);
    assert.equal(kept.length, 12);
    assert.deepEqual(kept.map((r) => r.id), [...ids].sort((x, y) => y - x));
    assert.deepEqual(await b.historyCounts(), [{ trigger: 'auto', result: 'success', count: 12 }]);
  });

  test('an alert delivered many times at once, to two processes, is recorded once; its result is seen by both', async (t) => {
    const [a, b] = await two(t);
    const deliveries = Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).recordAlert(alertRecord(`fp${i % 4}@2026-01-01T00:00:00Z:firing`, `delivery ${i}`)));
    const fresh = await Promise.all(deliveries);
    assert.equal(fresh.filter(Boolean).length, 4, 'one fresh delivery per key');
    for (let key = 0; key < 4; key++) assert.equal(fresh.filter((f, i) => f && i % 4 === key).length, 1, `key ${key}`);
    const kept = await a.alerts(100);
    assert.equal(kept.length, 4);
    assert.equal(await b.recordAlert(alertRecord('fp1@2026-01-01T00:00:00Z:firing', 'later')), false, 'a later re-delivery is a duplicate');
    await a.finishAlert('fp2@2026-01-01T00:00:00Z:firing', 'backup done');
    const seen = await b.alerts(100);
    assert.deepEqual(seen.filter((r) => r.result !== null).map((r) => [r.key, r.result]), [['fp2@2026-01-01T00:00:00Z:firing', 'backup done']]);
    await b.recordAlert(alertRecord('newest', 'x'));
    assert.equal((await a.alerts(1))[0]?.key, 'newest', 'newest first');
  });
}

/** Registers the contract of what several sidecars need (issue 12): call inside a describe, beside storeContract. */
export function clusterContract(factory: StoreFactory): void {
  const two = (t: TestContext) => twoProcesses(factory, t);

  test('renewLease renews only a lease its holder still holds, never takes one afresh', async (t) => {
    const [a, b] = await two(t);
    assert.equal(await a.renewLease('A', 60_000), undefined, 'nothing held: nothing renewed');
    assert.ok(await a.acquireLease('A', 60_000));
    assert.equal((await b.renewLease('A', 60_000))?.holder, 'A', 'the holder renews from any process');
    assert.equal(await b.renewLease('B', 60_000), undefined);
    await a.releaseLease('A');
    assert.equal(await a.renewLease('A', 60_000), undefined, 'released: gone');
    assert.equal(await a.leaseHolder(), undefined, 'and not taken back by the renewal');
    assert.ok(await a.acquireLease('A', 2_000));
    await waitFor('the short lease to expire', 30_000, async () => (await b.leaseHolder()) === undefined, 200);
    assert.equal(await a.renewLease('A', 2_000), undefined, 'expired: not renewed');
  });

  test('leadership is kept by its renewals, lost at once when the lease is taken away, and released', async (t) => {
    const [a, b] = await two(t);
    const ttl = 3_000;
    const leader = await takeLeadership(a, 'A', ttl);
    assert.ok(leader);
    assert.equal(await takeLeadership(b, 'B', ttl), undefined);
    // Beyond twice the TTL, the renewals keep it.
    const until = Date.now() + 2.5 * ttl;
    while (Date.now() < until) {
      assert.equal(await b.acquireLease('B', ttl), undefined);
      assert.equal(leader.stillLeader(), true);
      await sleep(500);
    }
    // Another process removes the lease: the next renewal finds it gone, and says so.
    await b.releaseLease('A');
    await waitFor('the loss to be reported', 30_000, () => leader.signal.aborted, 50);
    assert.ok(leader.signal.reason instanceof LeadershipLost);
    assert.match((leader.signal.reason as Error).message, /lost: the lease expired or went to another holder/);
    assert.equal(leader.stillLeader(), false);
    const next = await takeLeadership(b, 'B', ttl);
    assert.ok(next, 'another process takes over');
    await next.release();
    assert.equal(next.signal.aborted, true);
    assert.equal(await a.leaseHolder(), undefined, 'released');
  });

  test('watch: the state at the start, then every change by any process; nothing after stop', async (t) => {
    const [a, b] = await two(t);
    const seen: ClusterState[] = [];
    const watch = a.watch((state) => seen.push(state));
    t.after(() => watch.stop());
    await waitFor('the initial state', 30_000, () => seen.length >= 1);
    assert.deepEqual(seen[0], EMPTY);
    const latest = async () => JSON.stringify(seen.at(-1)) === JSON.stringify(await b.read());
    await b.commitSwitch(0, 'primary', 'secondary1', 'auto', 1_000);
    await waitFor('the switch', 30_000, latest);
    await a.setAutoFailover(false);
    await waitFor('the switch turned off (a change of this process)', 30_000, latest);
    await b.reinstate('primary');
    await waitFor('the reinstatement', 30_000, latest);
    assert.deepEqual(seen.at(-1), { primary: 'secondary1', epoch: 1, autoFailover: false, demoted: [], lastAutoFailoverAt: 1_000 });
    assert.ok(seen.length <= 4, `one call per change, not per poll: ${seen.length}`);
    watch.stop();
    const count = seen.length;
    // A second watch as the barrier: once it has seen the next change, the stopped one would have too.
    const other: ClusterState[] = [];
    const barrier = b.watch((state) => other.push(state));
    t.after(() => barrier.stop());
    await waitFor('the second watch started', 30_000, () => other.length >= 1);
    await b.commitSwitch(1, 'secondary1', 'primary', 'manual', 2_000);
    await waitFor('the second watch to see the switch', 30_000, () => other.at(-1)?.epoch === 2);
    assert.equal(seen.length, count);
  });

  test('watch: confirmedAt, set with the first state, moves on while the store answers; refresh (where offered) delivers a change at once', async (t) => {
    const [a, b] = await two(t);
    const seen: ClusterState[] = [];
    const watch = a.watch((state) => seen.push(state));
    t.after(() => watch.stop());
    await waitFor('the initial state', 30_000, () => seen.length >= 1);
    const first = watch.confirmedAt();
    assert.ok(first !== undefined && first <= performance.now(), `confirmed when the first state came: ${first}`);
    // Confirmed again without any change (SQLite: each poll; etcd: the periodic check read).
    await waitFor('a later confirmation', 30_000, () => (watch.confirmedAt() ?? 0) > first, 50);
    assert.equal(seen.length, 1, 'no call without a change');
    if (watch.refresh) {
      await b.commitSwitch(0, 'primary', 'secondary1', 'manual', 1_000);
      watch.refresh();
      assert.equal(seen.at(-1)?.epoch, 1, 'the switch delivered by refresh(), before it returned');
    }
    watch.stop();
  });

  test('members: each publication visible to every process, gone after its own TTL', async (t) => {
    const [a, b] = await two(t);
    await a.publishMember('m1', { up: ['primary'] }, 60_000);
    await b.publishMember('m2', { up: [] }, 2_000);
    assert.deepEqual((await a.members()).map((m) => [m.name, m.view]), [['m1', { up: ['primary'] }], ['m2', { up: [] }]]);
    await a.publishMember('m1', { up: ['primary', 'secondary1'] }, 60_000);
    const m1 = (await b.members()).find((m) => m.name === 'm1');
    assert.deepEqual(m1?.view, { up: ['primary', 'secondary1'] });
    assert.ok(Math.abs(m1!.publishedAt - Date.now()) < 60_000);
    await waitFor('m2 to expire', 30_000, async () => (await b.members()).map((m) => m.name).join() === 'm1', 200);
  });

  test('intents: claimed once each, oldest first, whoever claims; the outcome reaches the submitter once', async (t) => {
    const [a, b] = await two(t);
    const first = await b.submitIntent({ kind: 'failover', params: { target: 'secondary1' }, submittedBy: 'cli@b' });
    const second = await a.submitIntent({ kind: 'backup', params: {}, submittedBy: 'api@a' });
    assert.notEqual(first, second);
    const pending = await a.intent(first);
    assert.equal(pending?.state, 'pending');
    assert.deepEqual([pending?.kind, pending?.params, pending?.submittedBy, pending?.claimedBy, pending?.outcome], ['failover', { target: 'secondary1' }, 'cli@b', undefined, undefined]);
    assert.equal((await b.claimIntent('B'))?.id, first, 'the oldest first');
    const third = await b.submitIntent({ kind: 'auto_failover', params: { enabled: false }, submittedBy: 'api@b' });
    // Claimed at once by two processes: each intent exactly once (which claimer gets which is a race).
    const claims = await Promise.all([a.claimIntent('A'), b.claimIntent('B'), a.claimIntent('A'), b.claimIntent('B')]);
    const got = claims.filter((c): c is Intent => c !== undefined);
    assert.deepEqual(got.map((c) => c.id).sort(), [second, third].sort(), 'each claimed exactly once');
    assert.equal(await a.claimIntent('A'), undefined);
    assert.equal((await a.intent(first))?.claimedBy, 'B');
    assert.equal((await a.intent(second))?.claimedBy, got.find((c) => c.id === second)?.claimedBy);
    await a.finishIntent(first, { ok: true, message: 'primary -> secondary1 (epoch 1)', data: { epoch: 1 } });
    await b.finishIntent(first, { ok: false, message: 'a second finish' });
    const done = await b.intent(first);
    assert.equal(done?.state, 'finished');
    assert.deepEqual(done?.outcome, { ok: true, message: 'primary -> secondary1 (epoch 1)', data: { epoch: 1 } });
    assert.equal(await a.intent('no-such-intent'), undefined);
  });

  test('intents: the submitter waits for the outcome a leader in another process gives; without a leader it is told so', async (t) => {
    const [a, b] = await two(t);
    const id = await a.submitIntent({ kind: 'reinstate', params: { database: 'primary' }, submittedBy: 'cli@a' });
    const waiting = awaitIntent(a, id, 30_000);
    const claimed = await waitFor('the leader to claim it', 30_000, () => b.claimIntent('B'));
    assert.equal(claimed.id, id);
    await b.finishIntent(id, { ok: false, message: 'primary is not demoted' });
    assert.deepEqual(await waiting, { ok: false, message: 'primary is not demoted' });
    const orphan = await a.submitIntent({ kind: 'backup', params: {}, submittedBy: 'cli@a' });
    await assert.rejects(awaitIntent(a, orphan, 300), /intent .* \(backup\) still not claimed by any leader after 300 ms; is a leader running\?/);
  });
}
