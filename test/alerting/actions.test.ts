/**
 * decide(): what the sidecar does with one delivered alert, as a table of plain data.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { alertKey, decide, type ActionContext, type AlertOutcome } from '../../src/alerting/actions.js';
import type { WebhookAlert } from '../../src/alerting/payload.js';

const CONTEXT: ActionContext = { databases: ['primary', 'secondary1'], currentPrimary: 'primary', autoFailoverEnabled: true };

function alert(labels: Record<string, string>, status: 'firing' | 'resolved' = 'firing'): WebhookAlert {
  return {
    status,
    labels: { alertname: 'DrSomething', ...labels },
    annotations: {},
    startsAt: '2024-05-01T10:00:00.000Z',
    endsAt: status === 'resolved' ? '2024-05-01T10:05:00.000Z' : '0001-01-01T00:00:00Z',
    fingerprint: 'c0ffee0123456789',
  };
}

interface Case {
  what: string;
  labels: Record<string, string>;
  status?: 'firing' | 'resolved';
  context?: Partial<ActionContext>;
  action: string;
  outcome: AlertOutcome;
  why: RegExp;
}

const NOW = Date.parse('2024-05-01T10:00:00Z');

const cases: Case[] = [
  // Resolved: recorded, never acted on, whatever the action.
  { what: 'resolved failover alert', labels: { dr_action: 'failover', database: 'primary' }, status: 'resolved', action: 'failover', outcome: 'resolved', why: /resolved alerts are recorded, not acted on/ },
  { what: 'resolved backup alert', labels: { dr_action: 'backup', database: 'primary' }, status: 'resolved', action: 'backup', outcome: 'resolved', why: /not acted on/ },
  // Unknown action or database: recorded and ignored.
  { what: 'unknown dr_action', labels: { dr_action: 'reboot', database: 'primary' }, action: 'unknown', outcome: 'ignored', why: /unknown dr_action "reboot" \(expected failover, backup or none\)/ },
  { what: 'unknown database, failover', labels: { dr_action: 'failover', database: 'nope' }, action: 'failover', outcome: 'ignored', why: /unknown database "nope"/ },
  { what: 'unknown database, backup', labels: { dr_action: 'backup', database: 'nope' }, action: 'backup', outcome: 'ignored', why: /unknown database "nope"/ },
  { what: 'unknown database, none', labels: { dr_action: 'none', database: 'nope' }, action: 'none', outcome: 'ignored', why: /unknown database/ },
  // none: a record only.
  { what: 'dr_action none', labels: { dr_action: 'none', database: 'secondary1' }, action: 'none', outcome: 'recorded', why: /the rule asks for no action/ },
  { what: 'no dr_action label (an alert of some other rule): none', labels: { database: 'primary' }, action: 'none', outcome: 'recorded', why: /no action/ },
  { what: 'no database label, none', labels: { dr_action: 'none' }, action: 'none', outcome: 'recorded', why: /no action/ },
  // backup: of the database named, or of the current primary.
  { what: 'backup of a database', labels: { dr_action: 'backup', database: 'secondary1' }, action: 'backup', outcome: 'execute', why: /backup of secondary1/ },
  { what: 'backup without a database: of the current primary', labels: { dr_action: 'backup' }, action: 'backup', outcome: 'execute', why: /backup of the current primary/ },
  { what: 'backup even with automatic failover disabled', labels: { dr_action: 'backup', database: 'primary' }, context: { autoFailoverEnabled: false }, action: 'backup', outcome: 'execute', why: /backup of primary/ },
  // failover: only enabled AND the current primary AND nothing under way AND out of the (one) cooldown.
  { what: 'failover of the current primary', labels: { dr_action: 'failover', database: 'primary' }, action: 'failover', outcome: 'execute', why: /replace the primary primary \(switchover if it still answers, failover if not\)/ },
  { what: 'failover with automatic failover disabled', labels: { dr_action: 'failover', database: 'primary' }, context: { autoFailoverEnabled: false }, action: 'failover', outcome: 'suppressed', why: /automatic failover is disabled/ },
  { what: 'failover of a secondary', labels: { dr_action: 'failover', database: 'secondary1' }, action: 'failover', outcome: 'suppressed', why: /secondary1 is not the current primary \(primary\)/ },
  { what: 'failover of a primary already replaced', labels: { dr_action: 'failover', database: 'primary' }, context: { currentPrimary: 'secondary1' }, action: 'failover', outcome: 'suppressed', why: /primary is not the current primary \(secondary1\)/ },
  { what: 'failover with no primary at all', labels: { dr_action: 'failover', database: 'primary' }, context: { currentPrimary: undefined }, action: 'failover', outcome: 'suppressed', why: /not the current primary \(none\)/ },
  { what: 'failover naming no database', labels: { dr_action: 'failover' }, action: 'failover', outcome: 'suppressed', why: /names no database/ },
  { what: 'failover while a failover is under way', labels: { dr_action: 'failover', database: 'primary' }, context: { failoverUnderWay: true }, action: 'failover', outcome: 'suppressed', why: /a failover is already under way/ },
  { what: 'failover while under way and disabled: disabled first', labels: { dr_action: 'failover', database: 'primary' }, context: { failoverUnderWay: true, autoFailoverEnabled: false }, action: 'failover', outcome: 'suppressed', why: /automatic failover is disabled/ },
  { what: 'backup while a failover is under way', labels: { dr_action: 'backup', database: 'secondary1' }, context: { failoverUnderWay: true }, action: 'backup', outcome: 'execute', why: /backup of secondary1/ },
  {
    what: 'failover within the cooldown of the last automatic failover',
    labels: { dr_action: 'failover', database: 'primary' },
    context: { lastAutoFailoverAt: NOW - 60_000, cooldownSeconds: 300, now: NOW },
    action: 'failover',
    outcome: 'suppressed',
    why: /less than 300 s ago \(cooldown, 240 s left\)/,
  },
  {
    what: 'failover after the cooldown',
    labels: { dr_action: 'failover', database: 'primary' },
    context: { lastAutoFailoverAt: NOW - 301_000, cooldownSeconds: 300, now: NOW },
    action: 'failover',
    outcome: 'execute',
    why: /replace the primary primary/,
  },
  {
    what: 'failover with cooldown 0',
    labels: { dr_action: 'failover', database: 'primary' },
    context: { lastAutoFailoverAt: NOW - 1, cooldownSeconds: 0, now: NOW },
    action: 'failover',
    outcome: 'execute',
    why: /replace the primary primary/,
  },
  // Order of reasons: an unknown database is reported before "disabled".
  { what: 'unknown database with failover disabled', labels: { dr_action: 'failover', database: 'x' }, context: { autoFailoverEnabled: false }, action: 'failover', outcome: 'ignored', why: /unknown database "x"/ },
];

describe('decide: alert → action and outcome', () => {
  for (const c of cases) {
    test(c.what, () => {
      const a = alert(c.labels, c.status);
      const d = decide(a, { ...CONTEXT, ...c.context });
      assert.equal(d.action, c.action);
      assert.equal(d.outcome, c.outcome);
      assert.match(d.why, c.why);
      assert.equal(d.key, alertKey(a));
      assert.equal(d.alertname, 'DrSomething');
      assert.equal(d.database, c.labels.database ?? null);
    });
  }

  test('an alert without alertname is "unnamed"', () => {
    const a = alert({});
    delete a.labels.alertname;
    assert.equal(decide(a, CONTEXT).alertname, 'unnamed');
  });
});

describe('alertKey: one action per (fingerprint, startsAt), firing and resolved apart', () => {
  test('the same alert delivered again has the same key', () => {
    const a = alert({ dr_action: 'backup' });
    const again = { ...alert({ dr_action: 'backup' }), annotations: { summary: 'changed text' }, endsAt: '2024-05-01T10:09:00Z' };
    assert.equal(alertKey(a), alertKey(again));
    assert.equal(alertKey(a), 'c0ffee0123456789@2024-05-01T10:00:00.000Z:firing');
  });

  test('a new firing of the same series (new startsAt), or its resolution, is another key', () => {
    const a = alert({ dr_action: 'backup' });
    assert.notEqual(alertKey(a), alertKey({ ...a, startsAt: '2024-05-01T11:00:00.000Z' }));
    assert.notEqual(alertKey(a), alertKey({ ...a, status: 'resolved' }));
    assert.notEqual(alertKey(a), alertKey({ ...a, fingerprint: 'another' }));
  });
});
