/**
 * Drills refused through the real CLI (real SQLite files, real PostgreSQL servers): each says why, is
 * counted as skipped, lands in the history, and exits 1 (it proved nothing).
 * The reasons that only the process running a failover or a backup knows of
 * (one under way) are covered by the admission's table (admission.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { runCli } from '../support/cli.js';
import { clusterDatabases, memoryLogger, startInProcessSidecar, startPgCluster, tempFolder, tryInsert, waitFor, writeFailoverConfig, type InProcessSidecar } from '../support/failover.js';
import { waitForReplay } from '../support/postgres.js';
import { sample, sqliteCluster } from '../support/sqlite-cluster.js';

type DrillJson = { id: number; kind: string; result: string; detail: string };
const drills = (stdout: string) => JSON.parse(stdout) as DrillJson[];

test('automatic failover disabled: both drills skipped, nothing switched, the history says why', async (t) => {
  const cluster = sqliteCluster(t);
  const off = await cluster.cli('disable-auto-failover');
  assert.equal(off.code, 0, off.stderr);
  const run = await cluster.cli('drill', '--json');
  assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
  const [switchover, restore] = drills(run.stdout);
  for (const d of [switchover!, restore!]) {
    assert.equal(d.result, 'skipped');
    assert.match(d.detail, /^automatic failover is disabled/);
  }
  const history = JSON.parse((await cluster.cli('history', '--json')).stdout) as FailoverRecordJson[];
  assert.deepEqual(
    history.map((h) => [h.trigger, h.result, (h.drill as { kind: string } | undefined)?.kind]),
    [
      ['drill', 'refused', 'restore'],
      ['drill', 'refused', 'switchover'],
    ],
    'no switchover was made',
  );
  const status = JSON.parse((await cluster.cli('status', '--json')).stdout) as { primary: string; epoch: number };
  assert.deepEqual([status.primary, status.epoch], ['primary', 0]);
  // Text output: one line per drill, the reason in it.
  const text = await cluster.cli('drill', '--switchover-only');
  assert.equal(text.code, 1);
  assert.match(text.stdout, /^#\d+ switchover drill skipped: automatic failover is disabled \(disable-auto-failover, or the config\)/m);
});

test('a standby lagging more than max_lag_on_failover (cut off from its primary): the switchover drill is skipped by the sidecar that would run it', async (t) => {
  const tmp = tempFolder('dr-drill-lag-');
  const cluster = await startPgCluster({ standbys: 1 });
  t.after(async () => {
    await running?.stop();
    await cluster.destroy();
    tmp.cleanup();
  });
  const { file, config } = writeFailoverConfig({ dir: tmp.dir, databases: clusterDatabases(cluster), healthCheckInterval: 0.5, probeTimeout: 2, maxLag: 1 });
  const running: InProcessSidecar | undefined = await startInProcessSidecar(config, memoryLogger().log);
  const standby = cluster.standbys[0]!;
  // A replayed transaction first (the lag counts from the last one), then the standby cut off from its primary:
  // what the primary commits next, the standby never receives.
  assert.equal(await tryInsert(cluster.primary, 1), 'ok');
  await waitForReplay(cluster.primary, standby);
  await standby.query("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'");
  await standby.query('SELECT pg_reload_conf()');
  await waitFor('standby1 to stop streaming', 10_000, async () => (await standby.query('SELECT 1 FROM pg_stat_wal_receiver')).length === 0);
  for (let id = 2; id <= 4; id++) assert.equal(await tryInsert(cluster.primary, id), 'ok');
  await waitFor('standby1 to lag more than 1 s', 20_000, () => (running.sidecar.status().databases.find((d) => d.name === 'standby1')?.replication_lag_seconds ?? 0) > 1.5);

  const run = await runCli(['--config', file, 'drill', '--switchover-only', '--json'], { cwd: tmp.dir, timeoutMs: 60_000 });
  assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
  const [d] = drills(run.stdout);
  assert.equal(d!.result, 'skipped');
  assert.match(d!.detail, /^a secondary lags more than max_lag_on_failover \(1 s\): standby1 \d+\.\d s$/);
  assert.equal(running.sidecar.currentPrimary(), 'primary');
  const metrics = await (await fetch(`${running.http.url}/metrics`)).text();
  assert.equal(sample(metrics, 'dr_drills_total{kind="switchover",result="skipped"}'), 1);
  assert.equal(sample(metrics, 'dr_drills_total{kind="switchover",result="success"}'), 0);
});

test('a restore drill without any backup fails and says what to do; unknown databases and clashing flags are input errors', async (t) => {
  const cluster = sqliteCluster(t);
  const run = await cluster.cli('drill', '--restore-only', '--json');
  assert.equal(run.code, 1, run.stderr);
  const [d] = drills(run.stdout);
  assert.equal(d!.result, 'failed');
  assert.equal(d!.detail, 'no good backup of primary to restore: take one (disaster-recovery backup --database primary)');
  const unknown = await cluster.cli('drill', '--restore-only', '--database', 'nope');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^error: unknown database "nope"; enabled databases: primary, secondary1$/m);
  const both = await cluster.cli('drill', '--restore-only', '--switchover-only');
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--switchover-only and --restore-only exclude each other/);
});
