/**
 * A flapping PostgreSQL primary (hangs: SIGSTOP/SIGCONT of its postmaster),
 * asynchronous standbys, the sidecar in this process:
 *  - hangs shorter than detection_threshold probes cause no failover;
 *  - a hang for good causes one failover; a transaction left open on the hung
 *    primary is not committed there when it comes back, and the returning
 *    former primary is fenced;
 *  - the new primary dying within failover.cooldown causes no second automatic
 *    failover (status says why), while an operator can still switch by hand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/http/server.js';
import type { DisasterRecoveryManager } from '../../src/manager.js';
import type { DisasterRecoveryService } from '../../src/service.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import {
  inRecovery,
  memoryLogger,
  missingIds,
  nextSuccess,
  NumberedWriter,
  readOnlyDefault,
  report,
  startPgCluster,
  tempFolder,
  TOKEN,
  tryInsert,
  waitFor,
  writeFailoverConfig,
  type PgCluster,
  clusterDatabases,
  startInProcessSidecar,
  type InProcessSidecar,
} from '../support/failover.js';
import type { PgServer } from '../support/postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL flapping primary: short hangs, a hang for good, the new primary dying within the cooldown', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let cluster: PgCluster;
  let primary: PgServer;
  let standby1: PgServer;
  let standby2: PgServer;
  let sidecar: DisasterRecoveryService;
  let http: RunningServer;
  let manager: DisasterRecoveryManager;
  let running: InProcessSidecar | undefined;
  let writer: NumberedWriter | undefined;

  before(async () => {
    cluster = await startPgCluster({ standbys: 2 });
    [primary, standby1, standby2] = cluster.all() as [PgServer, PgServer, PgServer];
    const { config } = writeFailoverConfig({
      dir: tmp.dir,
      databases: clusterDatabases(cluster),
      healthCheckInterval: 0.5,
      threshold: 3,
      probeTimeout: 1,
      cooldown: 300,
    });
    running = await startInProcessSidecar(config, sidecarLog.log);
    ({ sidecar, http, manager } = running);
  });

  after(async () => {
    await writer?.stop().catch(() => undefined);
    await running?.stop();
    await cluster?.destroy();
    tmp.cleanup();
  });

  const dumpLogOnFailure = async (body: () => Promise<void>) => {
    try {
      await body();
    } catch (error) {
      console.log(`--- sidecar log ---\n${sidecarLog.text().split('\n').slice(-60).join('\n')}`);
      throw error;
    }
  };

  test('two hangs of 1.2 s (fewer failed probes than detection_threshold): seen, and no failover', () =>
    dumpLogOnFailure(async () => {
      writer = new NumberedWriter(manager).start();
      await writer.waitForAcks(50, 10_000, 'primary');
      const errorsBefore = sidecar.monitor.health('primary')!.errorCount;
      for (let i = 0; i < 2; i++) {
        primary.pause();
        await sleep(1200);
        primary.resume();
        await waitFor('the primary to answer the sidecar again', 5_000, () => sidecar.monitor.health('primary')?.status === 'up');
        await sleep(1500);
      }
      await writer.waitForAcks(50, 10_000, 'primary');
      await writer.stop();
      assert.ok(sidecar.monitor.health('primary')!.errorCount > errorsBefore, 'the sidecar saw the primary fail probes');
      assert.equal((await sidecar.refreshState()).epoch, 0);
      assert.deepEqual(await sidecar.history(10), []);
      assert.equal(await inRecovery(standby1), true);
      assert.deepEqual(await missingIds(primary, writer.ids()), []);
      assert.deepEqual(writer.on('standby1'), []);
    }));

  test('a hang for good: one failover to standby1; a transaction left open on the hung primary is not committed there when it comes back', () =>
    dumpLogOnFailure(async () => {
      const ID = 900_001;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let inserted!: () => void;
      const insertedOnce = new Promise<void>((r) => (inserted = r));
      let runs = 0;
      // An application transaction: INSERT, then some work before COMMIT, during which the primary hangs.
      const open = manager.withSession(async (session) => {
        if (session.engine !== 'postgresql') throw new Error('PostgreSQL expected');
        runs++;
        await session.client.query('INSERT INTO items (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [ID]);
        if (runs === 1) {
          inserted();
          await gate;
        }
        return session.database;
      });
      await insertedOnce;

      const hungAt = Date.now();
      primary.pause();
      const record = await nextSuccess(sidecar, 0, 20_000);
      assert.equal(record.trigger, 'auto');
      assert.equal(record.from, 'primary');
      assert.equal(record.to, 'standby1');
      assert.match(record.reason, /failed 3 probes in a row: .*timed out/);

      // The former primary answers again, and the application's transaction carries on at once.
      primary.resume();
      release();
      const wroteTo = await open;
      assert.equal(wroteTo, 'standby1', 'the transaction was run again on the new primary, not committed on the old one');
      assert.equal(runs, 2);
      assert.deepEqual(await missingIds(standby1, [ID]), []);
      // The sidecar may be fencing the returning former primary right now, ending this read's session too: read again then.
      const onFormer = await waitFor('a read of the former primary', 10_000, () => missingIds(primary, [ID]), 50);
      assert.deepEqual(onFormer, [ID], 'nothing committed on the former primary after the switch');

      // The sidecar fences the returning former primary.
      await waitFor('the sidecar to fence the returning former primary', 10_000, () => readOnlyDefault(primary), 50);
      assert.equal(await tryInsert(primary, ID + 1), '25006');
      assert.equal((await sidecar.history(10)).length, 1);
      report('postgres hung primary (SIGSTOP), interval 0.5 s, threshold 3, probe_timeout 1 s', {
        detect_ms: record.phases.detect,
        phases_ms: record.phases,
        hang_to_switch_ms: Date.parse(record.finishedAt) - hungAt,
      });
    }));

  test('the new primary dies within the cooldown: no second automatic failover, status says why; an operator can still switch', () =>
    dumpLogOnFailure(async () => {
      await standby1.kill9();
      // Several detection periods (3 × 0.5 s) pass.
      await waitFor('the sidecar to hold the failover', 10_000, () => /cooldown/.test(sidecar.status().auto_failover.held ?? ''));
      await sleep(3000);
      const status = sidecar.status();
      assert.equal(status.primary, 'standby1');
      assert.equal(status.epoch, 1);
      assert.match(status.auto_failover.held ?? '', /primary standby1 failed \d+ probes in a row, but the last automatic failover was \d+ s ago \(cooldown 300 s\)/);
      assert.equal(status.databases.find((d) => d.name === 'standby1')?.status, 'down');
      assert.equal(await inRecovery(standby2), true, 'standby2 was not promoted');
      const history = await sidecar.history(10);
      assert.equal(history.length, 1, 'no attempt recorded during the cooldown');
      const api = (await (await fetch(`${http.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { auto_failover: { held: string } };
      assert.match(api.auto_failover.held, /cooldown/);

      // The cooldown binds the automatic failover only.
      const res = await fetch(`${http.url}/api/failover`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ target: 'standby2', reason: 'standby1 died during the cooldown' }),
      });
      const body = (await res.json()) as FailoverRecordJson;
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.result, 'success');
      assert.equal(body.trigger, 'manual');
      assert.equal(body.from, 'standby1');
      assert.equal(body.to, 'standby2');
      assert.equal(await inRecovery(standby2), false);
      const route = (await (await fetch(`${http.url}/primary`)).json()) as { name: string };
      assert.equal(route.name, 'standby2');
    }));
});
