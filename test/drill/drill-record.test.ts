import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { cronPeriodSeconds, cronProblem } from '../../src/drill/cron.js';
import { drillKindsOf, parseDrillKinds, rowsShort } from '../../src/drill/drill-record.js';
import { randomMomentIn, runRestoreDrill } from '../../src/drill/restore-drill.js';
import { switchOutage } from '../../src/drill/write-probe.js';

test('switch outage: from the last commit on the old primary to the first on the new one after the switch began', () => {
  const commits = [
    { at: 100, database: 'a' },
    { at: 110, database: 'a' },
    { at: 180, database: 'b' },
    { at: 190, database: 'b' },
  ];
  assert.equal(switchOutage(commits, 'a', 'b', 105), 0.07);
  assert.equal(switchOutage(commits, 'b', 'a', 105), undefined, 'never committed on a after b');
  assert.equal(switchOutage(commits, 'a', 'c', 0), undefined);
});

test('rows short: tables with fewer rows after than before, new tables ignored', () => {
  assert.deepEqual(rowsShort({ images: 10, tags: 3 }, { images: 12, tags: 1, more: 5 }), { tags: 2 });
  assert.deepEqual(rowsShort({ images: 10 }, {}), { images: 10 });
});

test('drill kinds from the flags and the API', () => {
  assert.deepEqual(drillKindsOf({}), ['switchover', 'restore']);
  assert.deepEqual(drillKindsOf({ restoreOnly: true }), ['restore']);
  assert.throws(() => drillKindsOf({ restoreOnly: true, switchoverOnly: true }), /exclude each other/);
  assert.deepEqual(parseDrillKinds(['restore', 'restore'], 'body.kinds'), ['restore']);
  assert.throws(() => parseDrillKinds(['failover'], 'body.kinds'), /body.kinds: expected a non-empty list of "switchover", "restore"/);
});

test('cron: problems named, the longest gap between runs measured', () => {
  assert.equal(cronProblem('0 3 * * 0'), undefined);
  assert.match(cronProblem('every sunday') ?? '', /expected a cron expression of 5 fields/);
  assert.match(cronProblem('0 25 * * *') ?? '', /not a cron expression/);
  assert.equal(cronPeriodSeconds('0 3 * * 0'), 7 * 86400);
  assert.equal(cronPeriodSeconds('*/15 * * * *'), 900);
  // Weekdays at 02:00: the weekend gap is the period an alert must allow.
  assert.equal(cronPeriodSeconds('0 2 * * 1-5'), 3 * 86400);
});

test('a random moment of the archive window: uniform over its ranges, none for an empty window', () => {
  const d = (s: string) => new Date(s);
  const window = { ranges: [{ from: d('2026-01-01T00:00:00Z'), to: d('2026-01-01T01:00:00Z') }, { from: d('2026-01-02T00:00:00Z'), to: d('2026-01-02T01:00:00Z') }] };
  assert.equal(randomMomentIn(window, () => 0)?.toISOString(), '2026-01-01T00:00:00.000Z');
  assert.equal(randomMomentIn(window, () => 0.75)?.toISOString(), '2026-01-02T00:30:00.000Z');
  assert.equal(randomMomentIn({ ranges: [] }, () => 0.5), undefined);
});

test('drill.schedule in the config: a bad cron expression is refused at load, by its path', () => {
  const yaml = (schedule: string) => `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///tmp/p.db" }
  drill: { schedule: "${schedule}" }
`;
  assert.equal(parseConfig(yaml('0 3 * * 0'), '/etc/dr/config.yaml', {}).drill.schedule, '0 3 * * 0');
  assert.throws(
    () => parseConfig(yaml('weekly'), '/etc/dr/config.yaml', {}),
    (error: Error) => /disaster_recovery\.drill\.schedule: expected a cron expression of 5 fields/.test(error.message),
  );
  assert.equal(parseConfig(yaml('0 3 * * 0').replace(/ {2}drill.*\n/, ''), '/etc/dr/config.yaml', {}).drill.schedule, undefined);
});

test('the restore drill: the newest backup, then a random moment of the archive window when point-in-time restore is there', async () => {
  const verified = { file: '/b/primary/x.db.gz', database: 'primary', ok: true, detail: 'sha256 ok', tables: { images: 20 } };
  const base = { newestGood: () => ({ path: '/b/primary/x.db.gz', created_at: '2026-01-01T00:00:00Z' }), verify: async () => [verified] };
  const window = { database: 'primary', engine: 'postgresql' as const, ranges: [{ from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-01-01T02:00:00Z') }], gaps: [] };
  const asked: Date[] = [];
  const pitr = (ok: boolean) => ({ window: async () => window, check: async (_db: string, time: Date) => (asked.push(time), { ok, detail: ok ? 'restored, 20 row(s)' : 'segment 0000000100000000000000A3 missing' }) });

  const plain = await runRestoreDrill(base, 'primary');
  assert.equal(plain.ok, true);
  assert.equal(plain.figures.rowsChecked, 20);
  assert.equal(plain.figures.pointInTime.checked, false);

  const withArchive = await runRestoreDrill({ ...base, pointInTime: pitr(true), random: () => 0.25 }, 'primary');
  assert.equal(withArchive.ok, true);
  assert.deepEqual(withArchive.figures.pointInTime, { checked: true, time: '2026-01-01T00:30:00.000Z', detail: 'ok: restored, 20 row(s)' });
  assert.deepEqual(asked, [new Date('2026-01-01T00:30:00Z')]);

  const broken = await runRestoreDrill({ ...base, pointInTime: pitr(false), random: () => 0.5 }, 'primary');
  assert.equal(broken.ok, false);
  assert.match(broken.detail, /the archive did not: segment 0000000100000000000000A3 missing$/);

  const bad = await runRestoreDrill({ ...base, verify: async () => [{ ...verified, ok: false, detail: 'checksum mismatch' }] }, 'primary');
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /did not restore as recorded: checksum mismatch$/);
});
