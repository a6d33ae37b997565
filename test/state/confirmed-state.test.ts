/**
 * The writer's trust in the watched cluster state: the decision (a table of
 * cases) and the object over a real SQLite store written by another instance.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterStateUnconfirmed, ConfirmedState, isConfirmed } from '../../src/state/confirmed-state.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { createSandbox } from '../support/cli.js';

test('isConfirmed: trusted for less than one TTL after the last confirmation, never before the first', () => {
  const cases: Array<[now: number, confirmedAt: number | undefined, ttl: number, expected: boolean]> = [
    [1_000, undefined, 10_000, false],
    [1_000, 1_000, 10_000, true],
    [10_999, 1_000, 10_000, true],
    [11_000, 1_000, 10_000, false],
    [50_000, 1_000, 10_000, false],
    // A confirmation stamped with the send time of a read still in flight when `now` was taken.
    [1_000, 1_005, 10_000, true],
  ];
  for (const [now, at, ttl, expected] of cases) assert.equal(isConfirmed(now, at, ttl), expected, `now ${now}, confirmed at ${at}, ttl ${ttl}`);
});

test('ConfirmedState over the SQLite store: the switch of another process at once, no read; refused after the store is closed under it', async (t) => {
  const sandbox = createSandbox(t);
  const file = sandbox.path('state.db');
  const writer = new SqliteStateStore(file, { create: true });
  t.after(() => writer.close());
  const store = new SqliteStateStore(file);
  t.after(() => store.close());
  let reads = 0;
  const read = store.read.bind(store);
  store.read = () => {
    reads++;
    return read();
  };
  const changes: Array<[boolean, string | undefined]> = [];
  const view = new ConfirmedState(store, { ttlMs: 10_000, where: file, ttlSource: 'a test', onTrustChange: (trusted, why) => changes.push([trusted, why]) });
  t.after(() => view.stop());
  await view.ready();
  assert.equal(view.current().epoch, 0);
  assert.ok(await writer.commitSwitch(0, 'primary', 'secondary1', 'manual', 1));
  assert.deepEqual([view.current().epoch, view.current().primary], [1, 'secondary1'], 'seen at the next check, no wait for a poll');
  assert.equal((await view.fresh()).epoch, 1);
  assert.equal(reads, 0);
  view.stop();
  assert.throws(() => view.current(), (error: unknown) => error instanceof ClusterStateUnconfirmed && /cannot confirm the cluster state: the state store .*state\.db/.test((error as Error).message));
  assert.throws(() => view.current(), ClusterStateUnconfirmed);
  assert.deepEqual(changes, [], 'a stopped view is not news for the log');
});

test('ConfirmedState: the refusal and the return are told once each', async (t) => {
  const sandbox = createSandbox(t);
  const file = sandbox.path('state.db');
  const store = new SqliteStateStore(file, { create: true });
  t.after(() => store.close());
  // The store turns unreadable under the watch (an I/O error of its poll), then recovers.
  let failing = false;
  const watch = store.watch.bind(store);
  store.watch = (onChange, onError) => {
    const inner = watch(onChange, onError);
    return {
      stop: () => inner.stop(),
      confirmedAt: () => inner.confirmedAt(),
      refresh: () => {
        if (failing) throw new Error('disk I/O error');
        inner.refresh?.();
      },
    };
  };
  const changes: Array<[boolean, string | undefined]> = [];
  const view = new ConfirmedState(store, { ttlMs: 10_000, where: file, ttlSource: 'a test', onTrustChange: (trusted, why) => changes.push([trusted, why]) });
  t.after(() => view.stop());
  await view.ready();
  failing = true;
  assert.throws(() => view.current(), /disk I\/O error/);
  assert.throws(() => view.current(), ClusterStateUnconfirmed);
  failing = false;
  assert.equal(view.current().epoch, 0);
  assert.equal(view.current().epoch, 0);
  assert.deepEqual(
    changes.map(([trusted]) => trusted),
    [false, true],
  );
  assert.match(changes[0]![1]!, /cannot confirm the cluster state: .*disk I\/O error/);
});
