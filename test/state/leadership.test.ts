/**
 * The failure branches of a held leadership that a real store cannot be made to
 * produce on demand: a renewal that never answers (a frozen network, a paused
 * process). The store is a real SQLite one whose renewLease is made to hang.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LeadershipLost, takeLeadership } from '../../src/state/leadership.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { waitFor } from '../support/failover.js';
import { tempDir } from '../support/sqlite.js';

describe('leadership', () => {
  const tmp = tempDir('dr-leadership-');
  after(() => tmp.cleanup());

  test('a renewal that never answers: the leadership ends when the TTL runs out, not when the answer comes', async () => {
    const store = new SqliteStateStore(path.join(tmp.dir, 'hang.db'), { create: true });
    try {
      const leader = await takeLeadership(store, 'A', 1_500);
      assert.ok(leader);
      store.renewLease = () => new Promise(() => undefined);
      await waitFor('the lease to run out', 30_000, () => leader.signal.aborted, 20);
      assert.ok(leader.signal.reason instanceof LeadershipLost);
      assert.match((leader.signal.reason as Error).message, /leadership of A lost: the lease ran out without a confirmed renewal/);
      assert.equal(leader.stillLeader(), false);
    } finally {
      await store.close();
    }
  });

  test('a renewal that fails: lost at once, with the reason', async () => {
    const store = new SqliteStateStore(path.join(tmp.dir, 'fail.db'), { create: true });
    try {
      const leader = await takeLeadership(store, 'A', 60_000, { renewalsPerTtl: 600 });
      assert.ok(leader);
      store.renewLease = () => Promise.reject(new Error('disk gone'));
      await waitFor('the failed renewal to end it', 30_000, () => leader.signal.aborted, 20);
      assert.match((leader.signal.reason as Error).message, /lost: a renewal failed: disk gone/);
    } finally {
      await store.close();
    }
  });
});
