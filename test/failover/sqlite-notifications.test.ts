/**
 * Failover notifications (`disaster_recovery.notifications.webhooks`) to real
 * HTTP servers in this process: one JSON event per failover with from, to and
 * result; a webhook that hangs and one that answers 500 delay nothing.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { moveAway, sleep, sqliteCluster, startSidecar, waitForHistory } from '../support/sqlite-cluster.js';

interface Hook {
  url: string;
  /** Bodies received, parsed, with the time they arrived. */
  received: Array<{ at: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** A webhook receiver: `behaviour` answers 200, answers 500, or never answers. */
async function hook(behaviour: 'ok' | 'error' | 'hang'): Promise<Hook> {
  const received: Hook['received'] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      received.push({ at: Date.now(), body: JSON.parse(text) as Record<string, unknown> });
      if (behaviour === 'ok') res.writeHead(200).end('{}');
      else if (behaviour === 'error') res.writeHead(500).end('boom');
      // 'hang': no answer until the client gives up or the server closes.
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('SQLite failover notifications: one JSON event per failover; a hanging or failing webhook does not delay the failover', async (t) => {
  const hanging = await hook('hang');
  const failing = await hook('error');
  const good = await hook('ok');
  const cluster = sqliteCluster(t, {
    failover: { health_check_interval: 0.3, detection_threshold: 3, notification_enabled: true },
    notifications: { webhooks: [hanging.url, failing.url, good.url], timeout: 1 },
  });
  for (const h of [hanging, failing, good]) cluster.defer(() => h.close());
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const { service } = sidecar;

  // A manual switchover: it returns as soon as the switch is recorded, not when the webhooks answer.
  const started = performance.now();
  const manual = await service.failover({ trigger: 'manual', target: 'secondary1', reason: 'maintenance', ifPrimaryAnswers: 'switch over' });
  const manualMs = performance.now() - started;
  assert.equal(manual.result, 'success');
  assert.ok(manualMs < 500, `the switchover took ${manualMs.toFixed(0)} ms with a webhook that hangs (timeout 1 s)`);

  // An automatic failover back to primary after secondary1 is lost: the HA loop is not held up either.
  await service.reinstate('primary');
  const lost = moveAway(cluster.file('secondary1'));
  cluster.defer(() => lost.restore());
  const lostAt = Date.now();
  const auto = await waitForHistory(service, (r) => r.trigger === 'auto', 8_000, () => sidecar.logs.tail());
  assert.equal(auto.result, 'success', JSON.stringify(auto));
  assert.deepEqual([auto.from, auto.to], ['secondary1', 'primary']);
  const autoMs = Date.parse(auto.finishedAt) - lostAt;
  assert.ok(autoMs < 2_500, `the automatic failover ended ${autoMs} ms after the loss`);
  const decideToSwitch = (auto.phases.choose ?? 0) + (auto.phases.sync ?? 0) + (auto.phases.switch ?? 0);
  assert.ok(decideToSwitch < 200, `choose+sync+switch ${decideToSwitch} ms`);

  // The good webhook got exactly one event per failover, in order, with what happened.
  const deadline = Date.now() + 3_000;
  while (good.received.length < 2 && Date.now() < deadline) await sleep(20);
  await sleep(300);
  assert.equal(good.received.length, 2, JSON.stringify(good.received));
  const [first, second] = good.received.map((r) => r.body);
  for (const [event, record] of [
    [first!, manual],
    [second!, auto],
  ] as const) {
    assert.equal(event.source, 'dr-sidecar');
    assert.equal(event.event, 'failover');
    assert.equal(event.from, record.from);
    assert.equal(event.to, record.to);
    assert.equal(event.result, 'success');
    assert.equal(event.trigger, record.trigger);
    assert.equal(event.epoch, record.epoch);
    assert.equal(event.id, record.id);
    assert.equal(event.reason, record.reason);
    assert.match(String(event.summary), new RegExp(`failover ${record.from} -> ${record.to}: success`));
    assert.ok(typeof event.sent_at === 'string');
  }
  assert.ok(good.received[0]!.at - Date.parse(manual.finishedAt) < 1_000, 'delivered right away');
  assert.deepEqual((second!.data_sync as { method: string }).method, 'periodic-copy');

  // The failing one was retried; the hanging one was given up after the timeout (and retried).
  assert.ok(failing.received.length >= 2, `${failing.received.length} deliveries to the webhook answering 500`);
  assert.ok(hanging.received.length >= 1);
  await service.notifier.drain();
  assert.ok(
    sidecar.logs.lines.some((l) => /notification failed after 3 attempts: failover/.test(l.msg) && l.webhook === failing.url),
    'the failing webhook is logged after its last attempt',
  );
});
