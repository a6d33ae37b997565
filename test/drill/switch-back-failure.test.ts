/**
 * A switchover drill whose switch back fails: the original primary dies between
 * the two switches (killed by the pre_promote hook of the switch back, a real
 * crash at the worst moment). The drill leaves the cluster on the standby it
 * switched to, writable, with every acknowledged row, and says so loudly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../support/cli.js';
import {
  clusterDatabases,
  inRecovery,
  memoryLogger,
  missingIds,
  NumberedWriter,
  startInProcessSidecar,
  startPgCluster,
  tempFolder,
  tryInsert,
  writeFailoverConfig,
  type InProcessSidecar,
  type PgCluster,
} from '../support/failover.js';
import { sample } from '../support/sqlite-cluster.js';

describe('switchover drill: the original primary dies before the switch back', { timeout: 180_000 }, () => {
  const tmp = tempFolder('dr-drill-back-');
  const log = memoryLogger('info');
  let cluster: PgCluster;
  let running: InProcessSidecar;
  let configFile: string;

  before(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    const pid = cluster.primary.postmasterPid();
    const written = writeFailoverConfig({
      dir: tmp.dir,
      databases: clusterDatabases(cluster),
      healthCheckInterval: 0.5,
      probeTimeout: 2,
      prePromote: `if [ "$DR_TO" = primary ]; then kill -9 ${pid}; fi; exit 0`,
    });
    configFile = written.file;
    running = await startInProcessSidecar(written.config, log.log);
  });

  after(async () => {
    await running?.stop();
    await cluster?.destroy();
    tmp.cleanup();
  });

  test('the drill fails loudly, the cluster stays on standby1, which takes writes, nothing acknowledged is lost', async () => {
    const writer = new NumberedWriter(running.manager).start();
    try {
      await writer.waitForAcks(30, 15_000, 'primary');
      const run = await runCli(['--config', configFile, 'drill', '--switchover-only', '--json'], { cwd: tmp.dir, timeoutMs: 120_000 });
      assert.equal(run.code, 1, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
      const [drill] = JSON.parse(run.stdout) as Array<{ result: string; detail: string; switchover: { original: string; target: string; ended_on: string; outage_there_seconds: number } }>;
      assert.equal(drill!.result, 'failed');
      assert.equal(drill!.switchover.ended_on, 'standby1');
      assert.ok(drill!.switchover.outage_there_seconds > 0, 'the first switch was measured');
      assert.match(drill!.detail, /^the switch back to primary failed \(.*\); the cluster stays on standby1: standby1 takes writes$/);

      // Never half-switched: the recorded primary is standby1, promoted and writable (the switch back's fence was lifted).
      assert.equal(await running.sidecar.refreshState().then(() => running.sidecar.currentPrimary()), 'standby1');
      assert.equal(await inRecovery(cluster.standbys[0]!), false);
      assert.equal(await tryInsert(cluster.standbys[0]!, 9_000_000), 'ok');
      await writer.waitForAcks(30, 30_000, 'standby1');
      await writer.stop();
      const missing = await missingIds(cluster.standbys[0]!, writer.ids());
      assert.deepEqual(missing, [], `acknowledged rows missing on standby1: ${missing.slice(0, 20).join(', ')}`);

      // Loudly: an error in the log, the failed drill counted.
      assert.ok(
        log.lines().some((l) => l.level === 50 && /THE SWITCH BACK FAILED; the cluster is on standby1, not on its original primary primary/.test(String(l.msg))),
        'an error log line about the failed switch back',
      );
      const metrics = await (await fetch(`${running.http.url}/metrics`)).text();
      assert.equal(sample(metrics, 'dr_drills_total{kind="switchover",result="failed"}'), 1);
      assert.equal(sample(metrics, 'dr_drill_switch_back_failed'), 1);
    } finally {
      await writer.stop().catch(() => undefined);
    }
  });
});
