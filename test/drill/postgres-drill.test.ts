/**
 * The switchover drill on real PostgreSQL servers (a primary and a synchronous
 * standby) while an application writes numbered rows through withSession and
 * the sidecar runs in this process: the drill, asked through the real CLI, goes
 * to the standby and back; the cluster ends on its original primary with every
 * acknowledged row, and the history entry carries the outage measured each way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { runCli } from '../support/cli.js';
import {
  clusterDatabases,
  inRecovery,
  memoryLogger,
  missingIds,
  NumberedWriter,
  report,
  startInProcessSidecar,
  startPgCluster,
  tempFolder,
  writeFailoverConfig,
  type InProcessSidecar,
  type PgCluster,
  replicationStates,
  waitFor,
} from '../support/failover.js';

describe('PostgreSQL switchover drill under a writer: primary and a synchronous standby', { timeout: 180_000 }, () => {
  const tmp = tempFolder('dr-drill-');
  const log = memoryLogger('info');
  let cluster: PgCluster;
  let running: InProcessSidecar;
  let configFile: string;

  before(async () => {
    // standby1 is a synchronous standby of the primary (a quorum of one among it and standby2). standby2 is not the
    // sidecar's: it stays with the primary through the drill, so the primary commits again once back (nothing
    // re-attaches a demoted PostgreSQL standby yet). Set on the primary only: standby1, promoted, has no rule of its own.
    cluster = await startPgCluster({ standbys: 2 });
    await cluster.primary.query("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (standby1, standby2)'");
    await cluster.primary.query('SELECT pg_reload_conf()');
    await waitFor('standby1 to be a synchronous standby', 10_000, async () => (await replicationStates(cluster.primary)).standby1 === 'quorum');
    const written = writeFailoverConfig({ dir: tmp.dir, databases: clusterDatabases(cluster).slice(0, 2), healthCheckInterval: 0.5, probeTimeout: 2 });
    configFile = written.file;
    running = await startInProcessSidecar(written.config, log.log);
  });

  after(async () => {
    await running?.stop();
    await cluster?.destroy();
    tmp.cleanup();
  });

  test('drill --switchover-only: standby1 and back, zero acknowledged rows lost, outage each way in the history', async () => {
    const writer = new NumberedWriter(running.manager).start();
    try {
      await writer.waitForAcks(50, 15_000, 'primary');
      const run = await runCli(['--config', configFile, 'drill', '--switchover-only', '--json'], { cwd: tmp.dir, timeoutMs: 120_000 });
      assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}\n${log.text().split('\n').slice(-30).join('\n')}`);
      const [drill] = JSON.parse(run.stdout) as Array<{ result: string; detail: string; switchover: { original: string; target: string; ended_on: string; outage_there_seconds: number; outage_back_seconds: number } }>;
      assert.equal(drill!.result, 'success', drill!.detail);
      const s = drill!.switchover;
      assert.deepEqual([s.original, s.target, s.ended_on], ['primary', 'standby1', 'primary']);
      assert.ok(s.outage_there_seconds > 0 && s.outage_back_seconds > 0);

      await writer.waitForAcks(50, 30_000, 'primary');
      await writer.stop();
      assert.ok(writer.on('standby1').length > 0, 'the writer wrote on standby1 during the drill');
      const missing = await missingIds(cluster.primary, writer.ids());
      assert.deepEqual(missing, [], `acknowledged rows missing on the original primary: ${missing.slice(0, 20).join(', ')}`);
      assert.equal(await inRecovery(cluster.primary), false);
      assert.equal(running.sidecar.currentPrimary(), 'primary');

      const entries = (await running.sidecar.history(3)).map((r) => r);
      assert.deepEqual(
        entries.map((e) => [e.trigger, e.from, e.to, e.result]),
        [
          ['drill', 'primary', 'primary', 'success'],
          ['drill', 'standby1', 'primary', 'success'],
          ['drill', 'primary', 'standby1', 'success'],
        ],
      );
      assert.equal(entries[0]!.drill?.switchover?.outageThereSeconds, s.outage_there_seconds);
      assert.equal(entries[0]!.drill?.switchover?.outageBackSeconds, s.outage_back_seconds);
      report('postgres switchover drill (CLI)', { outage_there_seconds: s.outage_there_seconds, outage_back_seconds: s.outage_back_seconds, acknowledged: writer.acks.length });
    } finally {
      await writer.stop().catch(() => undefined);
    }
  });

  test('the drill entry reads in `history` (text and JSON)', async () => {
    const text = await runCli(['--config', configFile, 'history', '--limit', '1'], { cwd: tmp.dir, timeoutMs: 30_000 });
    assert.match(text.stdout, /drill: switchover drill success: primary -> standby1 -> primary; write outage [\d.]+ s there, [\d.]+ s back/);
    const json = await runCli(['--config', configFile, 'history', '--limit', '1', '--json'], { cwd: tmp.dir, timeoutMs: 30_000 });
    const [entry] = JSON.parse(json.stdout) as FailoverRecordJson[];
    assert.equal(entry!.trigger, 'drill');
    assert.equal((entry!.drill as { kind: string }).kind, 'switchover');
  });
});
