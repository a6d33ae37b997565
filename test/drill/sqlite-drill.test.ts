/**
 * Drills on real SQLite files through the real CLI (`disaster-recovery drill`,
 * a subprocess handing the drill to the running sidecar as an intent), while an
 * application writes through withSession: the switchover drill goes there and
 * back, the cluster ends on its original primary with every acknowledged row,
 * the history carries the measured outage; the restore drill restores the newest backup.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { waitFor } from '../support/failover.js';
import { imageIds, lostIds, sample, sqliteCluster, startSidecar, Writer } from '../support/sqlite-cluster.js';

interface DrillJson {
  id: number;
  kind: string;
  result: string;
  detail: string;
  switchover?: { original: string; target: string; ended_on: string; outage_there_seconds: number; outage_back_seconds: number; probe_commits: number; rows_checked: number; switch_ids: number[] };
  restore?: { database: string; backup: string; rows_checked: number; point_in_time: { checked: boolean; detail: string } };
}

test('SQLite drill by the CLI under a writer: there and back, nothing lost, outage in the history; the newest backup restored', async (t) => {
  const cluster = sqliteCluster(t, { failover: { health_check_interval: 0.3, sync_interval: 0.5 }, monitoring: { probe_timeout: 5 } });
  const config = cluster.load();
  const sidecar = await startSidecar(config);
  cluster.defer(() => sidecar.stop());
  const backup = await cluster.cli('backup', '--json');
  assert.equal(backup.code, 0, backup.stderr);
  const writer = await Writer.open(config, 1000, 2);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 50);

  const run = await cluster.cli('drill', '--json');
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}\n${sidecar.logs.tail(30)}`);
  const [switchover, restore] = JSON.parse(run.stdout) as [DrillJson, DrillJson];
  assert.equal(switchover.kind, 'switchover');
  assert.equal(switchover.result, 'success', switchover.detail);
  const s = switchover.switchover!;
  assert.equal(s.original, 'primary');
  assert.equal(s.target, 'secondary1');
  assert.equal(s.ended_on, 'primary');
  assert.ok(s.outage_there_seconds > 0 && s.outage_back_seconds > 0, JSON.stringify(s));
  assert.ok(s.probe_commits >= 10);
  assert.ok(s.rows_checked >= 20);
  assert.equal(s.switch_ids.length, 2);

  assert.equal(restore.kind, 'restore');
  assert.equal(restore.result, 'success', restore.detail);
  assert.equal(restore.restore!.database, 'primary');
  assert.equal(restore.restore!.rows_checked, 20, 'the rows the backup recorded');
  assert.equal(restore.restore!.point_in_time.checked, false);
  assert.match(restore.restore!.point_in_time.detail, /not available/);

  // The application wrote on through it all, and is back on the original primary with every row.
  await writer.waitForAcks('primary', 20);
  assert.ok(writer.ackedOn('secondary1').length > 0, 'the writer wrote on secondary1 during the drill');
  await writer.stop();
  const lost = lostIds(writer.ids(), imageIds(cluster.file('primary')));
  assert.deepEqual(lost, [], `${lost.length} acknowledged rows missing on the original primary`);
  assert.equal(sidecar.service.currentPrimary(), 'primary');

  // The history: the drill's two switchovers (trigger drill), and an entry per drill with its figures.
  const history = await cluster.cli('history', '--limit', '4', '--json');
  const entries = JSON.parse(history.stdout) as FailoverRecordJson[];
  assert.deepEqual(
    entries.map((e) => [e.trigger, e.from, e.to, e.result, e.drill?.kind ?? null]),
    [
      ['drill', 'primary', null, 'success', 'restore'],
      ['drill', 'primary', 'primary', 'success', 'switchover'],
      ['drill', 'secondary1', 'primary', 'success', null],
      ['drill', 'primary', 'secondary1', 'success', null],
    ],
  );
  const figures = (entries[1]!.drill as { switchover: { outage_there_seconds: number } }).switchover;
  assert.equal(figures.outage_there_seconds, s.outage_there_seconds);

  const metrics = await (await fetch(`${sidecar.http.url}/metrics`)).text();
  assert.equal(sample(metrics, 'dr_drills_total{kind="switchover",result="success"}'), 1);
  assert.equal(sample(metrics, 'dr_drills_total{kind="restore",result="success"}'), 1);
  assert.equal(sample(metrics, 'dr_drill_write_outage_seconds{kind="switchover",direction="there"}'), s.outage_there_seconds);
  assert.ok((sample(metrics, 'dr_drill_last_success_timestamp_seconds{kind="switchover"}') ?? 0) > Date.now() / 1000 - 600);
  // The drill's switches are failovers of trigger drill; the drill entries themselves are not counted as failovers.
  assert.equal(sample(metrics, 'dr_failovers_total{trigger="drill",result="success"}'), 2);
  console.log(`[drill-figures] sqlite: ${JSON.stringify({ outage_there_seconds: s.outage_there_seconds, outage_back_seconds: s.outage_back_seconds })}`);
});

test('drill.schedule: the leader runs both drills unattended, each a history entry requested by the schedule', async (t) => {
  // Every 5 s (node-schedule's six-field form, seconds first): the first run comes within the test's patience.
  const cluster = sqliteCluster(t, { failover: { sync_interval: 0.5 }, monitoring: { probe_timeout: 5 }, drill: { schedule: '*/5 * * * * *' } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const entries = await waitFor('a scheduled switchover drill and restore drill in the history', 60_000, async () => {
    const drills = (await sidecar.service.history(20)).filter((r) => r.drill?.requestedBy === 'scheduled');
    const kinds = new Set(drills.map((r) => r.drill!.kind));
    return kinds.has('switchover') && kinds.has('restore') ? drills : undefined;
  });
  await sidecar.stop();
  const switchover = entries.find((r) => r.drill!.kind === 'switchover')!;
  assert.equal(switchover.drill!.result, 'success', switchover.drill!.detail);
  // No backup was ever taken: the restore drill fails and says what to do.
  const restore = entries.find((r) => r.drill!.kind === 'restore')!;
  assert.equal(restore.drill!.result, 'failed');
  assert.match(restore.drill!.detail, /^no good backup of primary to restore/);
  assert.equal(sidecar.service.currentPrimary(), 'primary');
});

test('POST /api/drill: the drills asked for, answered with their history entries; a failed drill is notified', async (t) => {
  const events: Array<Record<string, unknown>> = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      events.push(JSON.parse(body) as Record<string, unknown>);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const cluster = sqliteCluster(t, { notifications: { webhooks: [url] } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const post = (body: unknown) =>
    fetch(`${sidecar.http.url}/api/drill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.doc.server.auth_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  const bad = await post({ kinds: ['chaos'] });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /^body\.kinds: expected a non-empty list of "switchover", "restore"$/);

  // No backup yet: the restore drill fails, and says so to the webhooks.
  const res = await post({ kinds: ['restore'] });
  assert.equal(res.status, 200);
  const [entry] = (await res.json()) as FailoverRecordJson[];
  assert.equal(entry!.trigger, 'drill');
  assert.equal(entry!.result, 'failed');
  assert.equal((entry!.drill as { kind: string }).kind, 'restore');
  const event = await waitFor('the failed drill notified', 10_000, () => events.find((e) => e.event === 'drill'));
  assert.equal(event.kind, 'restore');
  assert.equal(event.result, 'failed');
  assert.match(String(event.summary), /^restore drill failed: primary; 0 row\(s\) checked: no good backup of primary/);
});
