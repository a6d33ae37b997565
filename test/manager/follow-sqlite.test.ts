/**
 * Writers follow the cluster state in the SQLite store (the default): the
 * switches are made by the real CLI in another process while the application
 * writes through withSession here; the sessions follow through the store's
 * watch (a poll of PRAGMA data_version under the write lock), never a read of
 * the state per commit, and every acknowledged row is where it belongs.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { startEtcdCluster } from '../support/etcd.js';
import { imageIds, lostIds, sqliteCluster, Writer, type ClusterOptions } from '../support/sqlite-cluster.js';

/**
 * Three switches by the CLI under a writer: each time the writer's next sessions go to the
 * new primary, every acknowledged row is there, and the old primary holds nothing the new
 * one lacks (nothing landed on it after the switch was recorded). Returns the writer, stopped.
 */
async function switchesUnderAWriter(t: { after(fn: () => Promise<void>): void }, options: ClusterOptions, watch?: (writer: Writer) => void): Promise<Writer> {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 3600 }, monitoring: { probe_timeout: 5 }, ...options });
  const writer = await Writer.open(cluster.load(), 1000, 2);
  cluster.defer(() => writer.stop());
  watch?.(writer);
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
    // Taken before the files are read: rows acknowledged afterwards may not be in what was read.
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
  return writer;
}

test('SQLite store: a writer follows switches made by the CLI, with no read of the state store per commit', async (t) => {
  let reads = 0;
  const writer = await switchesUnderAWriter(t, {}, (w) => {
    const store = w.manager.service.store;
    const read = store.read.bind(store);
    store.read = () => {
      reads++;
      return read();
    };
  });
  assert.equal(reads, 0, `the state store was read ${reads} times for ${writer.acked.size} commits`);
});

test('SQLite databases under an etcd store: the same switches, none lost, none on a former primary after its switch', async (t) => {
  const etcd = await startEtcdCluster({ members: 1 });
  t.after(() => etcd.destroy());
  await switchesUnderAWriter(t, { state: { backend: 'etcd', etcd: { endpoints: etcd.endpoints, prefix: `/dr-follow/${randomUUID()}/`, ttl: 5 } } });
});
