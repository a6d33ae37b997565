/**
 * The Alertmanager webhook payload (version 4): what passes, and what a refusal says.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseWebhookPayload } from '../../src/alerting/payload.js';

/** A delivery as Alertmanager 0.25 sends it (captured shape, values made up). */
function delivery(): Record<string, unknown> {
  return {
    receiver: 'dr-sidecar',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'DrPrimaryDown', database: 'primary', dr_action: 'failover', rule: 'primary_down', severity: 'critical', instance: '127.0.0.1:9898', job: 'dr-sidecar' },
        annotations: { summary: 'Primary database primary is down', description: 'The current primary primary has failed its probes for 90s.' },
        startsAt: '2024-05-01T10:00:00.000Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=dr_database_up',
        fingerprint: '4e2f1c3b5a697d80',
      },
    ],
    groupLabels: { alertname: 'DrPrimaryDown', database: 'primary' },
    commonLabels: { alertname: 'DrPrimaryDown', database: 'primary' },
    commonAnnotations: { summary: 'Primary database primary is down' },
    externalURL: 'http://127.0.0.1:9093',
    version: '4',
    groupKey: '{}:{alertname="DrPrimaryDown", database="primary"}',
    truncatedAlerts: 0,
  };
}

const alert0 = (d: Record<string, unknown>) => (d.alerts as Array<Record<string, unknown>>)[0]!;

function refused(body: unknown): string {
  const r = parseWebhookPayload(body);
  assert.equal(r.ok, false, `expected a refusal of ${JSON.stringify(body)?.slice(0, 200)}`);
  return (r as { error: string }).error;
}

describe('webhook payload', () => {
  test('a real delivery passes, with its alerts', () => {
    const r = parseWebhookPayload(delivery());
    assert.ok(r.ok);
    assert.equal(r.payload.alerts.length, 1);
    assert.equal(r.payload.alerts[0]!.labels.dr_action, 'failover');
    assert.equal(r.payload.alerts[0]!.fingerprint, '4e2f1c3b5a697d80');
  });

  test('optional parts may be missing: annotations default to {}, no truncatedAlerts, extra keys kept out', () => {
    const d = delivery();
    delete d.truncatedAlerts;
    delete d.externalURL;
    delete d.groupLabels;
    delete alert0(d).annotations;
    delete alert0(d).generatorURL;
    delete alert0(d).endsAt;
    d.somethingNew = { from: 'a later Alertmanager' };
    const r = parseWebhookPayload(d);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.payload.alerts[0]!.annotations, {});
    assert.ok(!('somethingNew' in r.payload));
  });

  test('a resolved delivery and an empty alert list pass', () => {
    const d = delivery();
    d.status = 'resolved';
    alert0(d).status = 'resolved';
    assert.ok(parseWebhookPayload(d).ok);
    assert.ok(parseWebhookPayload({ ...delivery(), alerts: [] }).ok);
  });

  const refusals: Array<{ what: string; body: () => unknown; error: RegExp }> = [
    { what: 'not an object', body: () => 'hello', error: /^body: / },
    { what: 'no body at all', body: () => undefined, error: /^body: / },
    { what: 'an array', body: () => [delivery()], error: /^body: / },
    { what: 'version 3', body: () => ({ ...delivery(), version: '3' }), error: /^version: expected version "4" \(Alertmanager webhook payload\)$/ },
    { what: 'version as a number', body: () => ({ ...delivery(), version: 4 }), error: /^version: expected version "4"/ },
    { what: 'no version', body: () => ({ ...delivery(), version: undefined }), error: /^version: expected version "4"/ },
    { what: 'alerts not a list', body: () => ({ ...delivery(), alerts: {} }), error: /^alerts: / },
    { what: 'no alerts', body: () => ({ ...delivery(), alerts: undefined }), error: /^alerts: / },
    { what: 'an unknown status', body: () => ({ ...delivery(), status: 'exploded' }), error: /^status: / },
    {
      what: 'an alert without fingerprint',
      body: () => {
        const d = delivery();
        delete alert0(d).fingerprint;
        return d;
      },
      error: /^alerts\.0\.fingerprint: /,
    },
    {
      what: 'an alert with an empty startsAt',
      body: () => {
        const d = delivery();
        alert0(d).startsAt = '';
        return d;
      },
      error: /^alerts\.0\.startsAt: /,
    },
    {
      what: 'a label that is not a string',
      body: () => {
        const d = delivery();
        alert0(d).labels = { alertname: 'X', database: 7 };
        return d;
      },
      error: /^alerts\.0\.labels\.database: /,
    },
    {
      what: 'an alert status other than firing/resolved',
      body: () => {
        const d = delivery();
        alert0(d).status = 'pending';
        return d;
      },
      error: /^alerts\.0\.status: /,
    },
    { what: 'more than 1000 alerts', body: () => ({ ...delivery(), alerts: Array.from({ length: 1001 }, () => alert0(delivery())) }), error: /^alerts: / },
  ];
  for (const r of refusals) {
    test(`refused: ${r.what}`, () => {
      assert.match(refused(r.body()), r.error);
    });
  }
});
