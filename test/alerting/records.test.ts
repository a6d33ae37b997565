/**
 * Alert records in the SQLite state store, as the webhook receiver uses them:
 * one record per key however many deliveries race, committed in groups, durable,
 * and a failure reported to every delivery of the group.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import type { AlertRecord } from '../../src/state/store.js';
import { tempDir } from '../support/sqlite.js';

const record = (key: string, why = 'the rule asks for no action'): AlertRecord => ({
  key,
  receivedAt: new Date().toISOString(),
  alertname: 'DrTest',
  database: 'primary',
  status: 'firing',
  action: 'none',
  outcome: 'recorded',
  why,
  result: null,
});

describe('alert records in the SQLite state store', () => {
  const tmp = tempDir('dr-records-');
  after(() => tmp.cleanup());

  test('500 concurrent records of 50 keys: exactly one fresh per key, the first one kept', async () => {
    const store = new SqliteStateStore(path.join(tmp.dir, 'a.db'), { create: true });
    try {
      const calls = Array.from({ length: 500 }, (_, i) => store.recordAlert(record(`k${i % 50}`, `delivery ${i}`)));
      const fresh = await Promise.all(calls);
      assert.equal(fresh.filter(Boolean).length, 50);
      fresh.forEach((f, i) => assert.equal(f, i < 50, `delivery ${i}`));
      const kept = await store.alerts(1000);
      assert.equal(kept.length, 50);
      assert.deepEqual(new Set(kept.map((r) => r.why)), new Set(Array.from({ length: 50 }, (_, i) => `delivery ${i}`)));
      assert.equal(await store.recordAlert(record('k7')), false, 'a later re-delivery is a duplicate');
    } finally {
      await store.close();
    }
  });

  test('records are durable: another connection (another process) sees them and their results', async () => {
    const file = path.join(tmp.dir, 'b.db');
    const store = new SqliteStateStore(file, { create: true });
    await Promise.all([store.recordAlert(record('x')), store.recordAlert(record('y'))]);
    await store.finishAlert('x', 'backup done');
    const other = new SqliteStateStore(file);
    try {
      const seen = await other.alerts(10);
      assert.deepEqual(seen.map((r) => [r.key, r.result]).sort(), [['x', 'backup done'], ['y', null]]);
      assert.equal(await other.recordAlert(record('x')), false, 'the other connection sees the key taken');
    } finally {
      await other.close();
      await store.close();
    }
  });

  test('a store that cannot write fails every delivery of the group (so each is answered 5xx and re-sent)', async () => {
    const store = new SqliteStateStore(path.join(tmp.dir, 'c.db'), { create: true });
    const pending = [store.recordAlert(record('p')), store.recordAlert(record('q'))];
    await store.close();
    const settled = await Promise.allSettled(pending);
    assert.deepEqual(settled.map((s) => s.status), ['rejected', 'rejected']);
    await assert.rejects(store.recordAlert(record('r')));
  });
});
