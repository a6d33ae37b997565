/**
 * Automatic failover switched off by an operator (`disable-auto-failover`, the
 * real CLI) while the sidecar runs: the SQLite primary dies and nothing
 * switches; status (the sidecar's and a new CLI process's) says why, and
 * dr_auto_failover_enabled is 0. Switched on again, the failover happens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StatusReport } from '../../src/status.js';
import { moveAway, sample, sleep, sqliteCluster, startSidecar, waitForHistory } from '../support/sqlite-cluster.js';

test('SQLite, auto-failover disabled: the primary dies, nothing switches, status says why', async (t) => {
  const cluster = sqliteCluster(t, { failover: { health_check_interval: 0.3, detection_threshold: 3 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const { service } = sidecar;

  const off = await cluster.cli('disable-auto-failover');
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /automatic failover disabled/);
  // The sidecar reads the persisted switch within a second.
  const deadline = Date.now() + 5_000;
  while (service.autoFailoverEnabled() && Date.now() < deadline) await sleep(50);
  assert.equal(service.autoFailoverEnabled(), false, 'the sidecar sees the persisted switch');
  assert.equal(sample(await service.metrics.expose(), 'dr_auto_failover_enabled'), 0);

  const lost = moveAway(cluster.file('primary'));
  cluster.defer(() => lost.restore());
  // Far past health_check_interval × detection_threshold (0.9 s).
  await sleep(3_000);
  assert.ok(service.monitor.health('primary')!.consecutiveFailures >= 5, 'the primary is seen down');
  assert.deepEqual(await service.history(10), [], 'no failover attempt is made');
  assert.equal(service.currentPrimary(), 'primary');

  const status = service.status();
  assert.equal(status.primary, 'primary');
  assert.deepEqual(status.auto_failover.enabled, false);
  assert.equal(status.auto_failover.source, 'operator');
  assert.match(status.auto_failover.held ?? '', /primary primary failed \d+ probes in a row, but automatic failover is disabled/);
  const metrics = await service.metrics.expose();
  assert.equal(sample(metrics, 'dr_auto_failover_enabled'), 0);
  assert.equal(sample(metrics, 'dr_database_up{database="primary"}'), 0);
  assert.equal(sample(metrics, 'dr_database_is_primary{database="primary"}'), 1);
  const held = sidecar.logs.lines.filter((l) => /failover held: .*automatic failover is disabled/.test(l.msg));
  assert.equal(held.length, 1, `the hold is logged once, not at every probe:\n${held.map((l) => `${String(l.time)} ${l.msg}`).join("\n")}`);

  // Routing says the primary is unusable; /api/status says why.
  const routed = await fetch(`${sidecar.http.url}/primary`);
  assert.equal(routed.status, 503);
  assert.equal(((await routed.json()) as { name: string }).name, 'primary');
  const api = await fetch(`${sidecar.http.url}/api/status`, { headers: { authorization: 'Bearer test-token-0123456789' } });
  assert.equal(api.status, 200);
  assert.match(((await api.json()) as StatusReport).auto_failover.held ?? '', /automatic failover is disabled/);

  // A new process (the CLI) sees the same: the switch is persisted, the reason derived from its own probe.
  const cli = await cluster.cli('status', '--json');
  assert.equal(cli.code, 0, cli.stderr);
  const report = JSON.parse(cli.stdout) as StatusReport;
  assert.equal(report.primary, 'primary');
  assert.equal(report.auto_failover.enabled, false);
  assert.equal(report.auto_failover.source, 'operator');
  assert.match(report.auto_failover.held ?? '', /primary is down and automatic failover is disabled/);
  const text = await cluster.cli('status');
  assert.match(text.stdout, /^Auto-failover:\s+disabled \(set by an operator\)$/m);
  assert.match(text.stdout, /^Failover held:\s+.*automatic failover is disabled/m);

  // Switched on again: the dead primary is replaced.
  const on = await cluster.cli('enable-auto-failover');
  assert.equal(on.code, 0, on.stderr);
  const record = await waitForHistory(service, (r) => r.result === 'success', 8_000, () => sidecar.logs.tail());
  assert.deepEqual([record.from, record.to, record.trigger], ['primary', 'secondary1', 'auto']);
  assert.equal(sample(await service.metrics.expose(), 'dr_auto_failover_enabled'), 1);
  assert.equal(service.status().auto_failover.held, null);
});
