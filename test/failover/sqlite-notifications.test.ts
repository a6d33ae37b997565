/**
 * Failover notifications (`disaster_recovery.notifications.webhooks`) to real
 * HTTP servers in this process: one JSON event per failover with from, to and
 * result; a webhook that hangs and one that answers 500 delay nothing: the
 * failovers end while the hanging one still holds its request open.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../support/failover.js';
import { moveAway, sqliteCluster, startSidecar, waitForHistory } from '../support/sqlite-cluster.js';

interface Hook {
  url: string;
  /** Bodies received, parsed, in the order they arrived. */
  received: Array<Record<string, unknown>>;
  /** Requests a 'hang' receiver holds open now, unanswered. */
  held(): number;
  /** Requests the client gave up on (closed before an answer). */
  abandoned(): number;
  /** A 'hang' receiver answers 200 to what it holds and to every later request. */
  release(): void;
  close(): Promise<void>;
}

/** A webhook receiver: `behaviour` answers 200, answers 500, or holds the request open until release(). */
async function hook(behaviour: 'ok' | 'error' | 'hang'): Promise<Hook> {
  const received: Hook['received'] = [];
  const holding = new Set<http.ServerResponse>();
  let released = false;
  let abandoned = 0;
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      received.push(JSON.parse(text) as Record<string, unknown>);
      if (behaviour === 'ok' || (behaviour === 'hang' && released)) res.writeHead(200).end('{}');
      else if (behaviour === 'error') res.writeHead(500).end('boom');
      else holding.add(res);
    });
    res.on('close', () => {
      holding.delete(res);
      if (!res.writableEnded) abandoned++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    held: () => holding.size,
    abandoned: () => abandoned,
    release: () => {
      released = true;
      for (const res of holding) res.writeHead(200).end('{}');
    },
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
    // The client gives up on the hanging webhook only after 30 s (three times): a failover
    // that waited for it would return after the notifier abandoned a request, not before.
    notifications: { webhooks: [hanging.url, failing.url, good.url], timeout: 30 },
  });
  for (const h of [hanging, failing, good]) cluster.defer(() => h.close());
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const { service } = sidecar;

  // A manual switchover returns as soon as the switch is recorded, while the hanging webhook still holds its event.
  const manual = await service.failover({ trigger: 'manual', target: 'secondary1', reason: 'maintenance', ifPrimaryAnswers: 'switch over' });
  assert.equal(manual.result, 'success');
  assert.equal(hanging.abandoned(), 0, 'the switchover returned before the notifier gave up on the hanging webhook');
  await waitFor('the hanging webhook to hold the switchover\'s event', 10_000, () => hanging.held() === 1);
  // Delivered without waiting for anything else: the good webhook has it before the next failover.
  await waitFor('the good webhook to get the switchover\'s event', 10_000, () => good.received.length === 1);

  // An automatic failover back to primary after secondary1 is lost, with the hanging webhook still
  // holding the first event: the HA loop is not held up by it either.
  await service.reinstate('primary');
  const lost = moveAway(cluster.file('secondary1'));
  cluster.defer(() => lost.restore());
  const auto = await waitForHistory(service, (r) => r.trigger === 'auto', 30_000, () => sidecar.logs.tail());
  assert.equal(auto.result, 'success', JSON.stringify(auto));
  assert.deepEqual([auto.from, auto.to], ['secondary1', 'primary']);
  assert.ok(hanging.held() >= 1 && hanging.abandoned() === 0, 'the automatic failover ended while the hanging webhook still held the first event');

  // Every delivery ends once the hanging webhook answers; none is sent after drain().
  hanging.release();
  await service.notifier.drain(60_000);

  // The good webhook got exactly one event per failover, in order, with what happened.
  assert.equal(good.received.length, 2, JSON.stringify(good.received));
  const [first, second] = good.received;
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
  assert.deepEqual((second!.data_sync as { method: string }).method, 'periodic-copy');

  // The hanging one got both events; the failing one was retried, and logged after its last attempt.
  assert.deepEqual(hanging.received.map((e) => e.id), [manual.id, auto.id]);
  assert.ok(failing.received.length >= 2, `${failing.received.length} deliveries to the webhook answering 500`);
  assert.ok(
    sidecar.logs.lines.some((l) => /notification failed after 3 attempts: failover/.test(l.msg) && l.webhook === failing.url),
    'the failing webhook is logged after its last attempt',
  );
});
