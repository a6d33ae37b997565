/**
 * Switchover of a healthy SQLite primary by the real CLI (`disaster-recovery
 * failover secondary1`, a subprocess) while the application writes through
 * withSession in this process and the sidecar (periodic copies, HA loop) runs
 * here too: every acknowledged row reaches the new primary, both ways.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { DisasterRecoveryService } from '../../src/service.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { waitFor } from '../support/failover.js';
import { imageIds, lostIds, memoryLogger, sample, sleep, sqliteCluster, startSidecar, waitForHistory, Writer, type SqliteCluster } from '../support/sqlite-cluster.js';

async function switchTo(cluster: SqliteCluster, writer: Writer, from: string, to: string, reason: string): Promise<FailoverRecordJson> {
  const before = writer.ackedOn(from).length;
  const r = await cluster.cli('failover', to, '--reason', reason, '--json');
  assert.equal(r.code, 0, `failover ${to}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const record = JSON.parse(r.stdout) as FailoverRecordJson;
  assert.equal(record.result, 'success');
  assert.equal(record.from, from);
  assert.equal(record.to, to);
  assert.equal(record.trigger, 'manual');
  assert.equal(record.reason, reason);
  assert.ok(record.data_sync, 'data_sync recorded');
  // The rest of the WAL when the target already follows it (the sidecar carries the switch out), else a whole copy.
  assert.ok(['wal-shipping', 'final-copy'].includes(record.data_sync.method), record.data_sync.method);
  assert.equal(record.data_sync.complete, true, record.data_sync.detail);
  assert.match(record.data_sync.detail, /under its write lock/);
  assert.ok(writer.ackedOn(from).length > before, 'the writer was writing to the old primary during the switchover');
  return record;
}

/** Every row acknowledged so far is in `file`. */
function assertNoneLost(writer: Writer, file: string, what: string): number {
  const present = imageIds(file);
  const ids = writer.ids();
  const lost = lostIds(ids, present);
  assert.deepEqual(lost, [], `${what}: ${lost.length} of ${ids.length} acknowledged rows missing: ${lost.slice(0, 20).join(', ')}`);
  return ids.length;
}

test('SQLite switchover by the CLI under a writer, and back: zero acknowledged rows lost', async (t) => {
  const cluster = sqliteCluster(t, { failover: { health_check_interval: 0.3, sync_interval: 1 }, monitoring: { probe_timeout: 5 } });
  const config = cluster.load();
  const sidecar = await startSidecar(config);
  cluster.defer(() => sidecar.stop());
  const writer = await Writer.open(config, 1000, 2);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 100);

  const there = await switchTo(cluster, writer, 'primary', 'secondary1', '维护升级');
  assert.equal(there.epoch, 1);
  await writer.waitForAcks('secondary1', 100);
  // Periodic copies and the sidecar's view of the switch have had time to run.
  await sleep(2_500);
  await writer.waitForAcks('secondary1', 20);
  const countThere = assertNoneLost(writer, cluster.file('secondary1'), 'after the switch to secondary1');
  assert.equal(sidecar.service.currentPrimary(), 'secondary1');
  const routed = (await (await fetch(`${sidecar.http.url}/primary`)).json()) as { name: string };
  assert.equal(routed.name, 'secondary1');

  // The way back: the demoted primary is brought up to date under secondary1's write lock first.
  const back = await switchTo(cluster, writer, 'secondary1', 'primary', 'maintenance done');
  assert.equal(back.epoch, 2);
  await writer.waitForAcks('primary', 100);
  await sleep(2_500);
  await writer.stop();
  const countBack = assertNoneLost(writer, cluster.file('primary'), 'after the switch back to primary');
  for (const e of writer.errors) assert.fail(`the writer saw an error: ${JSON.stringify(e)}`);

  // Nothing was acknowledged on a database after it stopped being the primary.
  const switchedAt = new Date(there.finished_at).getTime();
  const backAt = new Date(back.finished_at).getTime();
  for (const [id, ack] of writer.acked) {
    if (ack.database === 'primary') assert.ok(ack.at <= switchedAt || ack.epoch === 2, `row ${id} acknowledged by primary at epoch ${ack.epoch}`);
    if (ack.database === 'secondary1') assert.ok(ack.epoch === 1 && ack.at <= backAt + 50, `row ${id} acknowledged by secondary1 at epoch ${ack.epoch}`);
  }
  const history = await sidecar.service.history(10);
  assert.deepEqual(
    history.map((r) => [r.from, r.to, r.result]),
    [
      ['secondary1', 'primary', 'success'],
      ['primary', 'secondary1', 'success'],
    ],
  );
  t.diagnostic(`rows acknowledged: ${countThere} at the first switch check, ${countBack} at the end; 0 lost; sync phases ${there.phases.sync} ms, ${back.phases.sync} ms`);
});

test('SQLite: a sidecar whose view predates a switchover does not copy the old primary over the new one', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 3600 }, monitoring: { probe_timeout: 5 } });
  const config = cluster.load();
  // A sidecar as it is between two refreshes of the shared state: it last read it before the switch.
  const logs = memoryLogger();
  const stale = await DisasterRecoveryService.open(config, logs.log);
  cluster.defer(() => stale.stop());
  await stale.monitor.probeAll();
  await stale.copies.copyOnce();
  const firstCopy = stale.copies.lastCopyAt('secondary1');
  assert.ok(firstCopy, 'the periodic copy runs while primary is the primary');

  const writer = await Writer.open(config, 1000, 2);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 50);
  await switchTo(cluster, writer, 'primary', 'secondary1', 'switch under a stale sidecar');
  await writer.waitForAcks('secondary1', 50);

  // Its periodic copy fires now, before its next refresh of the state.
  await stale.monitor.probeAll();
  await stale.copies.copyOnce();
  await writer.waitForAcks('secondary1', 20);
  await writer.stop();
  assertNoneLost(writer, cluster.file('secondary1'), 'after a periodic copy by a sidecar with a stale view');
  assert.equal(stale.copies.lastCopyAt('secondary1'), firstCopy, 'no copy into the new primary');
});

test('SQLite: a periodic copy under way when a switchover starts in another process is called off, not put over the new primary', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 3600 }, monitoring: { probe_timeout: 5 } });
  const config = cluster.load();
  const logs = memoryLogger();
  const sidecar = await DisasterRecoveryService.open(config, logs.log);
  cluster.defer(() => sidecar.stop());
  await sidecar.monitor.probeAll();
  const writer = await Writer.open(config, 1000, 2);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 50);

  // secondary1's write lock is held (as a slow reader of a rollback journal would), so both copies
  // into it, the sidecar's periodic one (its plan made now, before the switch) and the switchover's, wait.
  const { default: Database } = await import('better-sqlite3');
  const holder = new Database(cluster.file('secondary1'));
  cluster.defer(() => holder.open && holder.close());
  holder.exec('BEGIN IMMEDIATE');
  const periodic = sidecar.copies.copyOnce();
  const switching = cluster.cli('failover', 'secondary1', '--reason', 'switch during a periodic copy', '--json');
  // The switchover holds the failover lease (it has fenced the primary, copied it, and waits for the lock).
  const deadline = Date.now() + 15_000;
  while (!(await sidecar.store.leaseHolder()) && Date.now() < deadline) await sleep(20);
  assert.ok(await sidecar.store.leaseHolder(), 'the switchover took the failover lease');
  await sleep(300);
  holder.exec('ROLLBACK');
  holder.close();

  await periodic;
  const r = await switching;
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as FailoverRecordJson).result, 'success');
  assert.equal(sidecar.copies.lastCopyAt('secondary1'), undefined, 'the periodic copy was not put in place');
  assert.ok(
    logs.lines.some((l) => /copy of .* called off: (a failover is under way|the primary changed)/.test(l.msg)),
    `the copy says why it was called off:\n${logs.tail()}`,
  );
  await writer.waitForAcks('secondary1', 50);
  await writer.stop();
  assertNoneLost(writer, cluster.file('secondary1'), 'after a periodic copy raced the switchover');
  for (const e of writer.errors) assert.fail(`the writer saw an error: ${JSON.stringify(e)}`);
});

test('SQLite, the guide\'s switchover then the new primary lost: the former primary, kept up to date, takes over; no lag series for a database nobody copies to', async (t) => {
  const cluster = sqliteCluster(t, { failover: { health_check_interval: 0.3, detection_threshold: 3, sync_interval: 1 }, monitoring: { probe_timeout: 5 } });
  const config = cluster.load();
  const sidecar = await startSidecar(config);
  cluster.defer(() => sidecar.stop());
  const writer = await Writer.open(config, 1000, 2);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 50);
  await waitFor('a periodic copy into secondary1', 15_000, () => sidecar.service.copies.lastCopyAt('secondary1'));
  const lag = async (database: string) => sample(await (await fetch(`${sidecar.http.url}/metrics`)).text(), `dr_replication_lag_seconds{database="${database}"}`);

  // The guide's planned switchover: lossless, so the former primary stays a candidate.
  const r = await cluster.cli('failover', 'secondary1', '--reason', '维护升级');
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^ {3}data sync: (wal-shipping|final-copy), complete/m);
  assert.match(r.stdout, /^ {3}former primary: primary stays a failover candidate: WAL shipping keeps it up to date from secondary1$/m);
  const [switched] = JSON.parse((await cluster.cli('history', '--limit', '1', '--json')).stdout) as FailoverRecordJson[];
  assert.deepEqual(switched?.former_primary, { name: 'primary', demoted: false, note: 'primary stays a failover candidate: WAL shipping keeps it up to date from secondary1' });
  assert.deepEqual((await sidecar.service.refreshState()).demoted, []);

  // The sidecar copies secondary1 into its former primary, like into any secondary; its lag is the age of that copy.
  await writer.waitForAcks('secondary1', 50);
  const copied = await waitFor('a periodic copy of secondary1 into primary', 15_000, () => sidecar.service.copies.lagSeconds('primary', 1) !== undefined && sidecar.service.copies.lastCopyAt('primary'));
  const held = writer.ackedOn('secondary1').filter((id) => writer.acked.get(id)!.at < copied);
  assert.ok(held.length > 0);
  await waitFor('a lag series for primary', 5_000, async () => (await lag('primary')) !== undefined);
  assert.equal(await lag('secondary1'), undefined, 'the primary has no lag');

  // secondary1's file is deleted: automatic failover goes to the former primary, and /primary answers again.
  const lostAt = Date.now();
  for (const side of ['', '-wal', '-shm']) fs.rmSync(cluster.file('secondary1') + side, { force: true });
  const failover = await waitForHistory(sidecar.service, (h) => h.trigger === 'auto', 15_000, () => sidecar.logs.tail());
  assert.equal(failover.result, 'success', JSON.stringify(failover));
  assert.deepEqual([failover.from, failover.to], ['secondary1', 'primary']);
  assert.equal(failover.dataSync?.complete, false);
  assert.equal(failover.formerPrimary?.demoted, true, 'a lost primary may hold writes of the lost window');
  assert.match(failover.formerPrimary?.note ?? '', /secondary1 is demoted: it may hold writes the new primary lacks/);
  const routed = await waitFor('/primary to answer 200', 10_000, async () => {
    const answer = await fetch(`${sidecar.http.url}/primary`);
    return answer.status === 200 && ((await answer.json()) as { name: string; status: string });
  });
  assert.deepEqual([routed.name, routed.status], ['primary', 'up']);
  await writer.waitForAcks('primary', 50);
  assert.deepEqual(lostIds(held, imageIds(cluster.file('primary'))), [], 'rows of secondary1 copied before its loss are on primary');

  // Nobody copies into the demoted secondary1 nor into the primary: no lag series for either, now or later.
  assert.equal(await lag('secondary1'), undefined, 'no lag for the demoted secondary1');
  await writer.waitForAcks('primary', 300);
  assert.equal(await lag('secondary1'), undefined, 'no lag for the demoted secondary1');
  assert.equal(await lag('primary'), undefined, 'no lag for the primary');
  assert.equal(sidecar.service.status().databases.find((d) => d.name === 'secondary1')?.replication_lag_seconds, null);

  // The operator reinstates it: the periodic copies recreate its file, and its lag is the age of a fresh copy.
  const reinstated = await cluster.cli('reinstate', 'secondary1');
  assert.equal(reinstated.code, 0, reinstated.stderr);
  const fresh = await waitFor('a lag series for the reinstated secondary1', 15_000, async () => await lag('secondary1'));
  assert.ok(fresh < 5, `lag ${fresh} s right after a copy`);
  await writer.stop();
  for (const e of writer.errors.filter((e) => e.at < lostAt)) assert.fail(`the writer saw an error before the loss: ${JSON.stringify(e)}`);
});
