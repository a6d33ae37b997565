/**
 * No eligible secondary (SQLite, real files, sidecar in process): the primary
 * and its only secondary are lost together. No switch; each attempt is in the
 * history as no_candidate with the reason, counted, logged as critical; the
 * sidecar tries again after retry_delay, and once the secondary is back it
 * fails over to it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { moveAway, sample, sleep, sqliteCluster, startSidecar, waitForHistory } from '../support/sqlite-cluster.js';

test('SQLite, no candidate: nothing switches, no_candidate recorded and counted, retried after retry_delay, fails over once the secondary is back', async (t) => {
  const cluster = sqliteCluster(t, { failover: { health_check_interval: 0.3, detection_threshold: 3, retry_delay: 1, sync_interval: 1 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const { service } = sidecar;
  // secondary1 has been copied at least once (its lag is known).
  while (service.copies.lastCopyAt('secondary1') === undefined) await sleep(20);

  // The primary and its only secondary are lost at once (the periodic copy cannot bring the secondary back).
  const secondaryLost = moveAway(cluster.file('secondary1'));
  const primaryLost = moveAway(cluster.file('primary'));
  cluster.defer(() => primaryLost.restore());

  const first = await waitForHistory(service, (r) => r.result === 'no_candidate', 20_000, () => sidecar.logs.tail());
  assert.equal(first.trigger, 'auto');
  assert.equal(first.from, 'primary');
  assert.equal(first.to, null);
  assert.equal(first.epoch, null);
  assert.match(first.error ?? '', /no eligible secondary: secondary1: down/);
  assert.match(first.reason, /primary primary failed 3 probes in a row/);
  assert.equal(service.currentPrimary(), 'primary', 'nothing switched');
  assert.ok(
    sidecar.logs.lines.some((l) => l.level === 60 && /failover impossible: no eligible secondary/.test(l.msg)),
    'a critical (fatal) log line says the failover is impossible',
  );

  // It keeps trying, retry_delay (1 s) apart.
  // Well before the cooldown (60 s) could have passed: it is retry_delay that spaces the attempts.
  const second = await waitForHistory(service, (r) => r.result === 'no_candidate' && r.id !== first.id, 20_000, () => sidecar.logs.tail());
  const gap = new Date(second.startedAt).getTime() - new Date(first.finishedAt).getTime();
  // Not sooner than retry_delay: the sidecar's own wait (a lower bound load cannot break).
  assert.ok(gap >= 900, `second attempt ${gap} ms after the first ended (retry_delay 1 s)`);
  const metrics = await service.metrics.expose();
  assert.ok(sample(metrics, 'dr_failovers_total{trigger="auto",result="no_candidate"}')! >= 2);
  assert.equal(sample(metrics, 'dr_failovers_total{trigger="auto",result="success"}'), 0);

  // secondary1 comes back: the next attempt fails over to it, with what it held.
  secondaryLost.restore();
  const success = await waitForHistory(service, (r) => r.result === 'success', 20_000, () => sidecar.logs.tail());
  assert.deepEqual([success.from, success.to, success.trigger, success.epoch], ['primary', 'secondary1', 'auto', 1]);
  // The sidecar still holds the lost primary's WAL open: the rest of it is shipped (unfenced, so not called complete).
  assert.equal(success.dataSync?.method, 'wal-shipping', success.dataSync?.detail);
  assert.equal(success.dataSync?.complete, false);
  assert.equal(service.currentPrimary(), 'secondary1');
  const attempts = (await service.history(100)).filter((r) => r.result === 'no_candidate').length;
  assert.equal(sample(await service.metrics.expose(), 'dr_failovers_total{trigger="auto",result="no_candidate"}'), attempts);
  t.diagnostic(`${attempts} no_candidate attempts before secondary1 came back`);
});
