/**
 * Automatic failover of a SQLite primary, end to end in one process: the
 * sidecar (service.start(): probes, HA loop, periodic copies, HTTP) and an
 * application writing numbered rows through DisasterRecoveryManager.withSession.
 * The primary's file disappears (moved away with its WAL); secondary1 takes over,
 * the writer follows it, and no acknowledged row is missing: the sidecar ships
 * the rest of the WAL through the descriptors it holds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lostIds, imageIds, moveAway, sample, sqliteCluster, startSidecar, waitForHistory, Writer } from '../support/sqlite-cluster.js';

test('SQLite auto failover: the primary file is lost, secondary1 takes over with the rest of its WAL, nothing lost', async (t) => {
  const cluster = sqliteCluster(t, { failover: { health_check_interval: 0.3, detection_threshold: 3, sync_interval: 1 }, monitoring: { probe_timeout: 1 } });
  const config = cluster.load();
  const sidecar = await startSidecar(config);
  cluster.defer(() => sidecar.stop());
  const writer = await Writer.open(config, 1000);
  cluster.defer(() => writer.stop());
  writer.start();

  // Rows on the primary, and at least two periodic copies into secondary1.
  await writer.waitForAcks('primary', 50);
  const firstCopy = sidecar.service.copies.lastCopyAt('secondary1');
  for (let i = 0; i < 100 && sidecar.service.copies.lastCopyAt('secondary1') === firstCopy; i++) await new Promise((r) => setTimeout(r, 50));
  assert.notEqual(sidecar.service.copies.lastCopyAt('secondary1'), firstCopy, 'the periodic copy runs every sync_interval');
  await writer.waitForAcks('primary', 30);

  const copyBeforeLoss = sidecar.service.copies.lastCopyAt('secondary1')!;
  moveAway(cluster.file('primary'));

  // How soon it switches (the RTO) is a figure of `npm run bench`.
  const record = await waitForHistory(sidecar.service, (r) => r.trigger === 'auto', 30_000, () => sidecar.logs.tail());
  assert.equal(record.result, 'success', JSON.stringify(record));
  assert.equal(record.from, 'primary');
  assert.equal(record.to, 'secondary1');
  assert.equal(record.epoch, 1);
  assert.match(record.reason, /primary primary failed 3 probes in a row/);
  // Detected after 3 failed probes 0.3 s apart: the monitor's own timers put at least 0.6 s between the
  // first and the third (a lower bound load cannot break); a decision on the first failure would not.
  assert.ok(record.phases.detect !== undefined && record.phases.detect >= 500, `detect phase ${record.phases.detect} ms`);
  for (const phase of ['choose', 'sync', 'switch'] as const) assert.equal(typeof record.phases[phase], 'number', `phase ${phase}`);

  // The history says what was shipped from the files the sidecar still held, and that nothing committed was left.
  assert.ok(record.dataSync, 'dataSync recorded');
  assert.equal(record.dataSync.method, 'wal-shipping', record.dataSync.detail);
  assert.equal(record.dataSync.complete, false, 'not fenced: a write could still have reached the lost file');
  assert.match(record.dataSync.detail, /gone from its path.*not shipped: 0 committed transactions, 0 s/);
  assert.ok(sidecar.service.copies.lastCopyAt('secondary1')! >= copyBeforeLoss);

  // The application goes on, on secondary1, through withSession.
  await writer.waitForAcks('secondary1', 30);
  const routed = await fetch(`${sidecar.http.url}/primary`);
  assert.equal(routed.status, 200);
  const body = (await routed.json()) as { name: string; epoch: number; status: string };
  assert.equal(body.name, 'secondary1');
  assert.equal(body.epoch, 1);
  assert.equal((await fetch(`${sidecar.http.url}/primary/secondary1`)).status, 200);
  assert.equal((await fetch(`${sidecar.http.url}/primary/primary`)).status, 503);
  await writer.stop();

  // No row acknowledged on the old primary is lost.
  const present = imageIds(cluster.file('secondary1'));
  const onPrimary = writer.ackedOn('primary');
  const lostRows = lostIds(onPrimary, present);
  assert.deepEqual(lostRows, [], 'every row acknowledged on the old primary was shipped');
  // Every row acknowledged on secondary1 is there; nothing was acknowledged on the primary after the switch.
  assert.deepEqual(lostIds(writer.ackedOn('secondary1'), present), []);
  const switchedAt = new Date(record.finishedAt).getTime();
  const lateOnPrimary = onPrimary.filter((id) => writer.acked.get(id)!.at > switchedAt);
  assert.deepEqual(lateOnPrimary, [], 'no write reached the old primary after the switch');
  for (const e of writer.errors) assert.fail(`the writer saw an error (withSession should wait for the failover): ${JSON.stringify(e)}`);
  t.diagnostic(
    `phases ${JSON.stringify(record.phases)}; ` +
      `${lostRows.length} of ${onPrimary.length} rows lost; ${record.dataSync.detail}`,
  );

  const metrics = await sidecar.service.metrics.expose();
  assert.equal(sample(metrics, 'dr_failovers_total{trigger="auto",result="success"}'), 1);
  assert.equal(sample(metrics, 'dr_database_is_primary{database="secondary1"}'), 1);
  const status = sidecar.service.status();
  assert.equal(status.primary, 'secondary1');
  assert.equal(status.databases.find((d) => d.name === 'primary')?.demoted, true);
});
