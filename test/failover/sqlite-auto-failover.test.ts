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

  const killedAt = Date.now();
  moveAway(cluster.file('primary'));
  

  const record = await waitForHistory(sidecar.service, (r) => r.trigger === 'auto', 10_000, () => sidecar.logs.tail());
  assert.equal(record.result, 'success', JSON.stringify(record));
  assert.equal(record.from, 'primary');
  assert.equal(record.to, 'secondary1');
  assert.equal(record.epoch, 1);
  assert.match(record.reason, /primary primary failed 3 probes in a row/);
  // Detected after 3 probes 0.3 s apart (the first one may come up to 0.3 s after the loss).
  const switchedAfter = new Date(record.finishedAt).getTime() - killedAt;
  assert.ok(switchedAfter < 3_000, `switched ${switchedAfter} ms after the loss`);
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
  const syncedAt = new Date(record.finishedAt).getTime();
  const expectedLag = (syncedAt - copiedAt) / 1000;
  assert.ok(Math.abs(record.dataSync.lagSeconds - expectedLag) < 0.5, `lagSeconds ${record.dataSync.lagSeconds}, time since the last copy ${expectedLag}`);
  // sync_interval 1 s and detection in about a second: the last copy is at most a few seconds old.
  assert.ok(record.dataSync.lagSeconds < 4, `lag ${record.dataSync.lagSeconds} s`);

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
  const lateOnPrimary = onPrimary.filter((id) => writer.acked.get(id)!.at > syncedAt);
  assert.deepEqual(lateOnPrimary, [], 'no write reached the old primary after the switch');
  for (const e of writer.errors) assert.fail(`the writer saw an error (withSession should wait for the failover): ${JSON.stringify(e)}`);
  t.diagnostic(
    `switch ${switchedAfter} ms after the loss (phases ${JSON.stringify(record.phases)}); ` +
      `${lostRows.length} of ${onPrimary.length} rows lost, data ${record.dataSync.lagSeconds.toFixed(2)} s behind`,
  );

  const metrics = await sidecar.service.metrics.expose();
  assert.equal(sample(metrics, 'dr_failovers_total{trigger="auto",result="success"}'), 1);
  assert.equal(sample(metrics, 'dr_database_is_primary{database="secondary1"}'), 1);
  const status = sidecar.service.status();
  assert.equal(status.primary, 'secondary1');
  assert.equal(status.databases.find((d) => d.name === 'primary')?.demoted, true);
});
