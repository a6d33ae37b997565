/**
 * A flapping SQLite primary against the sidecar's HA loop (in process, real
 * files): short outages below detection_threshold switch nothing; a real one
 * switches once; the old primary coming back and going again, and the new
 * primary failing within failover.cooldown, switch nothing more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corruptHeader, sample, sleep, sqliteCluster, startSidecar, waitForHistory } from '../support/sqlite-cluster.js';

test('SQLite flapping primary: blips below the threshold and failures within the cooldown cause one failover', async (t) => {
  const cluster = sqliteCluster(t, {
    secondaries: ['secondary1', 'secondary2'],
    failover: { health_check_interval: 0.5, detection_threshold: 3, cooldown: 60, sync_interval: 1 },
    monitoring: { check_interval: 0.5, probe_timeout: 1 },
  });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const { service } = sidecar;
  const health = (name: string) => service.monitor.health(name)!;
  const waitUntil = async (what: string, check: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${sidecar.logs.tail()}`);
      await sleep(20);
    }
  };
  await waitUntil('every database up', () => ['primary', 'secondary1', 'secondary2'].every((n) => health(n).status === 'up'));

  // Down, up, down, up, down, up: each outage (0.7 s) catches one or two probes 0.5 s apart, never three.
  for (let blip = 0; blip < 3; blip++) {
    const errorsBefore = health('primary').errorCount;
    const broken = corruptHeader(cluster.file('primary'));
    await waitUntil('a failed probe of the primary', () => health('primary').errorCount > errorsBefore, 2_000);
    await sleep(200);
    broken.restore();
    await waitUntil('the primary up again', () => health('primary').status === 'up', 3_000);
    assert.ok(health('primary').consecutiveFailures === 0);
  }
  assert.ok(health('primary').errorCount >= 3, `${health('primary').errorCount} failed probes seen`);
  assert.deepEqual(await service.history(10), [], 'short outages switch nothing');

  // A real failure: one failover, to secondary1.
  const broken = corruptHeader(cluster.file('primary'));
  const first = await waitForHistory(service, () => true, 10_000, () => sidecar.logs.tail());
  assert.equal(first.result, 'success', JSON.stringify(first));
  assert.deepEqual([first.from, first.to, first.trigger], ['primary', 'secondary1', 'auto']);

  // The old primary comes back, then goes again: it is a demoted secondary now, nothing happens.
  broken.restore();
  await waitUntil('the old primary up again', () => health('primary').status === 'up', 5_000);
  const again = corruptHeader(cluster.file('primary'));
  await waitUntil('the old primary down again', () => health('primary').consecutiveFailures >= 3, 5_000);
  again.restore();

  // The new primary fails within the cooldown: held, and status says why.
  const newPrimaryDown = corruptHeader(cluster.file('secondary1'));
  cluster.defer(() => newPrimaryDown.restore());
  await waitUntil('secondary1 failed 3 probes in a row', () => health('secondary1').consecutiveFailures >= 3, 5_000);
  await sleep(1_500);
  const status = service.status();
  assert.equal(status.primary, 'secondary1');
  assert.match(status.auto_failover.held ?? '', /primary secondary1 failed \d+ probes in a row, but the last automatic failover was \d+ s ago \(cooldown 60 s\)/);
  assert.ok(
    sidecar.logs.lines.some((l) => /failover held: .*cooldown 60 s/.test(l.msg)),
    'the hold is logged',
  );

  const history = await service.history(10);
  assert.equal(history.length, 1, `one failover in all: ${JSON.stringify(history.map((r) => [r.from, r.to, r.result]))}`);
  const metrics = await service.metrics.expose();
  assert.equal(sample(metrics, 'dr_failovers_total{trigger="auto",result="success"}'), 1);
  for (const result of ['failed', 'no_candidate', 'refused']) assert.equal(sample(metrics, `dr_failovers_total{trigger="auto",result="${result}"}`), 0, result);
});
