/**
 * failover.max_lag_on_failover with PostgreSQL standbys whose primary was idle
 * before it died: a standby's replay lag (now - its last replayed transaction)
 * then grows with the idle time, yet a standby that holds all the WAL the
 * primary had is not behind. A standby whose replication broke before the last
 * writes is, and is passed over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DisasterRecoveryService } from '../../src/service.js';
import {
  allUp,
  APP_DB,
  inRecovery,
  memoryLogger,
  missingIds,
  nextSuccess,
  report,
  startPgCluster,
  tempFolder,
  waitFor,
  walReceiver,
  writeFailoverConfig,
  type PgCluster,
  clusterDatabases,
} from '../support/failover.js';
import { waitForReplay, type PgServer } from '../support/postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL max_lag_on_failover after an idle primary dies', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let cluster: PgCluster;
  let primary: PgServer;
  let standby1: PgServer;
  let standby2: PgServer;
  let sidecar: DisasterRecoveryService;

  before(async () => {
    cluster = await startPgCluster({ standbys: 2 });
    [primary, standby1, standby2] = cluster.all() as [PgServer, PgServer, PgServer];
    const { config } = writeFailoverConfig({
      dir: tmp.dir,
      databases: clusterDatabases(cluster),
      healthCheckInterval: 0.5,
      threshold: 3,
      probeTimeout: 1,
      maxLag: 2,
    });
    sidecar = new DisasterRecoveryService(config, sidecarLog.log);
    await sidecar.start();
    await allUp(sidecar);
  });

  after(async () => {
    await sidecar?.stop();
    await cluster?.destroy();
    tmp.cleanup();
  });

  test('the caught-up standby2 is chosen after 4 s of idleness; standby1, cut off before the last writes, is passed over', async () => {
    await primary.query('INSERT INTO items (id) SELECT g FROM generate_series(1, 100) g', [], APP_DB);
    await waitForReplay(primary, standby1);
    // standby1's replication breaks; the primary takes more writes that only standby2 receives.
    await standby1.query("ALTER SYSTEM SET primary_conninfo = ''");
    await standby1.query('SELECT pg_reload_conf()');
    await waitFor('standby1 to stop streaming', 10_000, async () => (await walReceiver(standby1)) === undefined, 50);
    await primary.query('INSERT INTO items (id) SELECT g FROM generate_series(101, 200) g', [], APP_DB);
    await waitForReplay(primary, standby2);

    // Then nothing is written for twice max_lag_on_failover, and the primary dies.
    await sleep(4_000);
    assert.ok(sidecar.monitor.health('standby2')!.last!.replicationLagSeconds === 0, 'streaming and caught up: lag 0 while the primary lives');
    const killedAt = Date.now();
    await primary.kill9();
    const record = await nextSuccess(sidecar, 0, 15_000);
    assert.equal(record.trigger, 'auto');
    assert.equal(record.to, 'standby2', JSON.stringify(await sidecar.history(10), null, 2));
    assert.equal(await inRecovery(standby2), false);
    assert.deepEqual(await missingIds(standby2, Array.from({ length: 200 }, (_, i) => i + 1)), []);
    const attempts = await sidecar.history(10);
    assert.deepEqual(
      attempts.map((r) => r.result),
      ['success'],
      'no no_candidate attempt before it: the idle time did not count as lag',
    );
    report('postgres idle primary killed, max_lag_on_failover 2 s', { kill_to_switch_ms: Date.parse(record.finishedAt) - killedAt, phases_ms: record.phases });
  });
});
