/**
 * Writers follow the cluster state in the SQLite store (the default): the
 * switches are made by the real CLI in another process while the application
 * writes through withSession here; the sessions follow through the store's
 * watch (a poll of PRAGMA data_version under the write lock), never a read of
 * the state per commit, and every acknowledged row is where it belongs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageIds, lostIds, sqliteCluster, Writer } from '../support/sqlite-cluster.js';

test('SQLite store: a writer follows switches made by the CLI, with no read of the state store per commit', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 3600 }, monitoring: { probe_timeout: 5 } });
  const writer = await Writer.open(cluster.load(), 1000, 2);
  cluster.defer(() => writer.stop());
  const store = writer.manager.service.store;
  let reads = 0;
  const read = store.read.bind(store);
  store.read = () => {
    reads++;
    return read();
  };
  writer.start();
  await writer.waitForAcks('primary', 50);

  for (const [epoch, from, to] of [
    [1, 'primary', 'secondary1'],
    [2, 'secondary1', 'primary'],
    [3, 'primary', 'secondary1'],
  ] as const) {
    await writer.waitForAcks(from, 20);
    const r = await cluster.cli('failover', to, '--reason', `switch ${epoch}`, '--json');
    assert.equal(r.code, 0, `failover ${to}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { epoch: number }).epoch, epoch);
    // The next sessions go to the new primary, with the new epoch.
    await writer.waitForAcks(to, 30);
    const acked = writer.ids();
    const onNew = imageIds(cluster.file(to));
    assert.deepEqual(lostIds(acked, onNew), [], `acknowledged rows missing on ${to} after switch ${epoch}`);
    // Copied under the old primary's write lock: whatever reached it reached the new one, nothing landed there afterwards.
    assert.deepEqual(lostIds(imageIds(cluster.file(from)), onNew), [], `rows on ${from} that ${to} lacks after switch ${epoch}`);
  }
  await writer.stop();
  // primary holds the even epochs, secondary1 the odd ones.
  const misplaced = [...writer.acked].filter(([, a]) => a.database !== (a.epoch % 2 === 0 ? 'primary' : 'secondary1'));
  assert.deepEqual(misplaced, [], 'acknowledged on a database that was not the primary of its epoch');
  assert.deepEqual(writer.errors, []);
  assert.equal(reads, 0, `the state store was read ${reads} times for ${writer.acked.size} commits`);
});
