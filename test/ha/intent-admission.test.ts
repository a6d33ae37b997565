import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admitIntent } from '../../src/ha/intent-admission.js';

const now = 1_000_000;
const base = { submittedAt: now - 1000, now, claimWaitMs: 15_000 };

const cases: Array<{ name: string; kind: string; params: Record<string, unknown>; submittedAt?: number; admit: boolean; why?: RegExp }> = [
  { name: 'a manual failover', kind: 'failover', params: { trigger: 'manual', target: 'secondary1', reason: 'r' }, admit: true },
  { name: 'an alert failover without a target', kind: 'failover', params: { trigger: 'alert', reason: 'r' }, admit: true },
  { name: 'an automatic trigger is the leader\'s alone', kind: 'failover', params: { trigger: 'auto', reason: 'r' }, admit: false, why: /params.trigger/ },
  { name: 'a target that is not a name', kind: 'failover', params: { trigger: 'manual', target: 3, reason: 'r' }, admit: false, why: /params.target/ },
  { name: 'the auto-failover switch', kind: 'auto_failover', params: { enabled: false }, admit: true },
  { name: 'the switch without a boolean', kind: 'auto_failover', params: { enabled: 'no' }, admit: false, why: /params.enabled: expected true or false/ },
  { name: 'reinstate', kind: 'reinstate', params: { name: 'primary' }, admit: true },
  { name: 'a backup', kind: 'backup', params: {}, admit: true },
  { name: 'accept-file', kind: 'accept_file', params: { name: 'primary' }, admit: true },
  { name: 'accept-file without a name', kind: 'accept_file', params: {}, admit: false, why: /params\.name: expected a database name/ },
  { name: 'a drill', kind: 'drill', params: { kinds: ['switchover', 'restore'] }, admit: true },
  { name: 'a drill of an unknown kind', kind: 'drill', params: { kinds: ['chaos'] }, admit: false, why: /params.kinds/ },
  { name: 'an unknown kind', kind: 'drop_tables', params: {}, admit: false, why: /unknown intent "drop_tables"/ },
  { name: 'older than its submitter waits', kind: 'backup', params: {}, submittedAt: now - 16_000, admit: false, why: /later than its submitter waits \(15 s\); not done/ },
];

for (const c of cases) {
  test(`intent admission: ${c.name}`, () => {
    const a = admitIntent({ ...base, kind: c.kind, params: c.params, ...(c.submittedAt ? { submittedAt: c.submittedAt } : {}) });
    assert.equal(a.admit, c.admit, JSON.stringify(a));
    if (!a.admit && c.why) assert.match(a.why, c.why);
  });
}
