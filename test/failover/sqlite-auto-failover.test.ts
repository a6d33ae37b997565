/**
 * Automatic failover of a SQLite primary, end to end in one process: the
 * sidecar (service.start(): probes, HA loop, periodic copies, HTTP) and an
 * application writing numbered rows through DisasterRecoveryManager.withSession.
 * The primary's file disappears; secondary1 takes over, the writer follows it,
 * and only rows acknowledged after the last periodic copy may be missing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lostIds, imageIds, moveAway, sample, sqliteCluster, startSidecar, waitForHistory, Writer } from '../support/sqlite-cluster.js';

test('SQLite auto failover: the primary file is lost, secondary1 takes over, loss bounded by the last copy', async (t) => {
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

  // The history says the old primary could not be read and how old secondary1's data is.
  assert.ok(record.dataSync, 'dataSync recorded');
  assert.equal(record.dataSync.method, 'periodic-copy');
  assert.equal(record.dataSync.complete, false);
  assert.match(record.dataSync.detail, /could not be read/);
  const copiedAtText = /last copy at (\S+)/.exec(record.dataSync.detail)?.[1];
  assert.ok(copiedAtText, record.dataSync.detail);
  const copiedAt = new Date(copiedAtText).getTime();
  assert.equal(copiedAt, sidecar.service.copies.lastCopyAt('secondary1'));
  assert.ok(record.dataSync.lagSeconds !== undefined);
  // The lag is the age of that copy, taken during the failover: between its start and its end.
  const [lagFrom, lagTo] = [record.startedAt, record.finishedAt].map((at) => (new Date(at).getTime() - copiedAt) / 1000);
  assert.ok(record.dataSync.lagSeconds >= lagFrom! - 0.001 && record.dataSync.lagSeconds <= lagTo! + 0.001, `lagSeconds ${record.dataSync.lagSeconds}, the copy's age ${lagFrom} s to ${lagTo} s during the failover`);
  // The copies went on until the loss: the one the failover used is not older than the last one seen before it.
  assert.ok(copiedAt >= copyBeforeLoss, `the last copy at ${new Date(copiedAt).toISOString()}, one was seen at ${new Date(copyBeforeLoss).toISOString()}`);

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

  // Rows lost: only those acknowledged on the old primary after the last copy began.
  const present = imageIds(cluster.file('secondary1'));
  const onPrimary = writer.ackedOn('primary');
  const lostRows = lostIds(onPrimary, present);
  for (const id of lostRows) {
    const ack = writer.acked.get(id)!;
    assert.ok(ack.at >= copiedAt, `row ${id} acknowledged at ${new Date(ack.at).toISOString()}, before the last copy at ${copiedAtText}, is missing`);
  }
  const beforeCopy = onPrimary.filter((id) => writer.acked.get(id)!.at < copiedAt);
  assert.ok(beforeCopy.length >= 50, 'rows acknowledged before the last copy are all there');
  // Every row acknowledged on secondary1 is there; nothing was acknowledged on the primary after the switch.
  assert.deepEqual(lostIds(writer.ackedOn('secondary1'), present), []);
  const switchedAt = new Date(record.finishedAt).getTime();
  const lateOnPrimary = onPrimary.filter((id) => writer.acked.get(id)!.at > switchedAt);
  assert.deepEqual(lateOnPrimary, [], 'no write reached the old primary after the switch');
  for (const e of writer.errors) assert.fail(`the writer saw an error (withSession should wait for the failover): ${JSON.stringify(e)}`);
  t.diagnostic(
    `phases ${JSON.stringify(record.phases)}; ` +
      `${lostRows.length} of ${onPrimary.length} rows lost, data ${record.dataSync.lagSeconds.toFixed(2)} s behind`,
  );

  const metrics = await sidecar.service.metrics.expose();
  assert.equal(sample(metrics, 'dr_failovers_total{trigger="auto",result="success"}'), 1);
  assert.equal(sample(metrics, 'dr_database_is_primary{database="secondary1"}'), 1);
  const status = sidecar.service.status();
  assert.equal(status.primary, 'secondary1');
  assert.equal(status.databases.find((d) => d.name === 'primary')?.demoted, true);
});
