import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admitDrill, type DrillAdmissionInput } from '../../src/drill/admission.js';

const healthy: DrillAdmissionInput = {
  kind: 'switchover',
  autoFailoverEnabled: true,
  drillUnderWay: false,
  failoverUnderWay: false,
  backupsUnderWay: [],
  primary: 'primary',
  secondaries: [
    { name: 'secondary1', up: true, lagSeconds: 0.4 },
    { name: 'secondary2', up: false, lagSeconds: 900 },
  ],
  maxLagSeconds: 5,
};

const cases: Array<{ name: string; input: Partial<DrillAdmissionInput>; why?: RegExp }> = [
  { name: 'a healthy cluster', input: {} },
  { name: 'a down secondary lagging does not count (it is no candidate)', input: {} },
  { name: 'no lag bound configured', input: { maxLagSeconds: undefined, secondaries: [{ name: 's', up: true, lagSeconds: 3600 }] } },
  { name: 'a lag not known yet', input: { secondaries: [{ name: 's', up: true, lagSeconds: undefined }] } },
  { name: 'automatic failover disabled', input: { autoFailoverEnabled: false }, why: /^automatic failover is disabled/ },
  { name: 'a failover under way', input: { failoverUnderWay: true }, why: /^a failover is under way$/ },
  { name: 'a backup or restore under way', input: { backupsUnderWay: ['primary'] }, why: /^a backup or restore of primary is under way$/ },
  { name: 'another drill under way', input: { drillUnderWay: true }, why: /^another drill is under way$/ },
  { name: 'a secondary lagging more than max_lag_on_failover', input: { secondaries: [{ name: 'secondary1', up: true, lagSeconds: 7.25 }] }, why: /^a secondary lags more than max_lag_on_failover \(5 s\): secondary1 7\.3 s$/ },
  { name: 'no primary', input: { primary: undefined }, why: /no current primary/ },
  { name: 'a restore drill ignores the lag', input: { kind: 'restore', secondaries: [{ name: 'secondary1', up: true, lagSeconds: 60 }] } },
  { name: 'a restore drill still waits for a backup under way', input: { kind: 'restore', backupsUnderWay: ['primary'] }, why: /backup or restore of primary/ },
];

for (const c of cases) {
  test(`drill admission: ${c.name}`, () => {
    const a = admitDrill({ ...healthy, ...c.input });
    if (!c.why) assert.deepEqual(a, { admit: true });
    else {
      assert.equal(a.admit, false);
      assert.match((a as { why: string }).why, c.why);
    }
  });
}
