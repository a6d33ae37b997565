/**
 * Automatic failover of a PostgreSQL primary with two streaming standbys, standby1
 * synchronous, against real servers: kill -9 of the primary's postmaster while an
 * application writes numbered rows through DisasterRecoveryManager.withSession and
 * the sidecar runs in this process. Then the killed primary is restarted: the
 * sidecar fences it before anyone can write to it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/http/server.js';
import type { DisasterRecoveryManager } from '../../src/manager.js';
import type { DisasterRecoveryService } from '../../src/service.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import type { FailoverRecord } from '../../src/state/store.js';
import {
  inRecovery,
  maxId,
  memoryLogger,
  missingIds,
  nextSuccess,
  NumberedWriter,
  readOnlyDefault,
  replicationStates,
  report,
  startPgCluster,
  tempFolder,
  TOKEN,
  tryInsert,
  waitFor,
  walReceiver,
  writeFailoverConfig,
  type PgCluster,
  clusterDatabases,
  startInProcessSidecar,
  type InProcessSidecar,
} from '../support/failover.js';
import { waitForReplay, type PgServer } from '../support/postgres.js';

describe('PostgreSQL automatic failover: kill -9 of the primary, two streaming standbys, standby1 synchronous', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let cluster: PgCluster;
  let sidecar: DisasterRecoveryService;
  let http: RunningServer;
  let manager: DisasterRecoveryManager;
  let running: InProcessSidecar | undefined;
  let writer: NumberedWriter | undefined;
  let record: FailoverRecord | undefined;

  before(async () => {
    cluster = await startPgCluster({ standbys: 2, synchronous: 'FIRST 1 (standby1, standby2)' });
    const { config } = writeFailoverConfig({
      dir: tmp.dir,
      databases: clusterDatabases(cluster),
      healthCheckInterval: 0.5,
      threshold: 3,
      probeTimeout: 1,
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

  test('standby1 streams synchronously, standby2 is the potential synchronous standby', async () => {
    // The walsenders take the reloaded synchronous_standby_names on their next cycle: poll, bounded.
    const expected = { standby1: 'sync', standby2: 'potential' };
    const states = await waitFor('sync states', 5000, async () => {
      const now = await replicationStates(cluster.primary);
      return JSON.stringify(now) === JSON.stringify(expected) ? now : undefined;
    }).catch(async () => replicationStates(cluster.primary));
    assert.deepEqual(states, expected);
  });

  test('kill -9: standby1 promoted, standby2 follows it, the writer goes on, /primary names standby1, no acknowledged row lost', async () => {
    try {
      await killAndCheck();
    } catch (error) {
      console.log(`--- sidecar log ---\n${sidecarLog.text().split('\n').slice(-60).join('\n')}`);
      throw error;
    }
  });

  async function killAndCheck(): Promise<void> {
    const [primary, standby1, standby2] = cluster.all() as [PgServer, PgServer, PgServer];
    writer = new NumberedWriter(manager).start();
    await writer.waitForAcks(200, 15_000, 'primary');

    const killedAt = Date.now();
    await primary.kill9();
    record = await nextSuccess(sidecar, 0, 20_000);
    const switchedAt = Date.parse(record.finishedAt);
    await writer.waitForAcks(200, 20_000, 'standby1');
    await writer.stop();

    // The switch as the history records it.
    assert.equal(record.trigger, 'auto');
    assert.equal(record.from, 'primary');
    assert.equal(record.to, 'standby1');
    assert.equal(record.epoch, 1);
    assert.match(record.reason, /primary primary failed 3 probes in a row/);
    for (const phase of ['detect', 'choose', 'sync', 'switch'] as const) assert.equal(typeof record.phases[phase], 'number', `phase ${phase} timed`);
    assert.equal(record.dataSync?.method, 'streaming');
    assert.match(record.dataSync?.detail ?? '', /standby2: now streaming from 127\.0\.0\.1:\d+/);
    assert.deepEqual(await sidecar.history(10), [record], 'one attempt, one entry');

    // standby1 is a primary; standby2 streams from it and replays what the writer wrote there.
    assert.equal(await inRecovery(standby1), false);
    assert.equal(await inRecovery(standby2), true);
    await waitFor('standby2 to stream from standby1', 10_000, async () => (await walReceiver(standby2))?.port === standby1.port && (await walReceiver(standby2))?.status === 'streaming');
    assert.equal((await replicationStates(standby1)).standby2, 'sync', 'standby2 is now standby1\'s synchronous standby');
    await waitForReplay(standby1, standby2);
    assert.equal(await maxId(standby2), await maxId(standby1));
    assert.ok(writer.on('standby1').length >= 200);

    // Routing follows the switch.
    const route = await fetch(`${http.url}/primary`);
    assert.equal(route.status, 200);
    assert.equal(((await route.json()) as { name: string }).name, 'standby1');
    assert.equal((await fetch(`${http.url}/primary/standby1`)).status, 200);
    assert.equal((await fetch(`${http.url}/primary/primary`)).status, 503);
    const history = (await (await fetch(`${http.url}/api/history`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as FailoverRecordJson[];
    assert.equal(history[0]?.id, record.id);
    assert.equal(sidecar.status().primary, 'standby1');
    assert.equal(sidecar.status().databases.find((d) => d.name === 'primary')?.demoted, true);

    // Every acknowledged id is on the new primary.
    const acked = writer.ids();
    const missing = await missingIds(standby1, acked);
    assert.deepEqual(missing, [], `acknowledged rows missing on the new primary: ${missing.slice(0, 20).join(', ')}`);

    const gap = writer.longestGap();
    const decidedAt = switchedAt - (record.phases.choose ?? 0) - (record.phases.sync ?? 0) - (record.phases.switch ?? 0);
    report('postgres kill -9, interval 0.5 s, threshold 3', {
      detect_ms: record.phases.detect,
      detection_to_switch_ms: (record.phases.choose ?? 0) + (record.phases.sync ?? 0) + (record.phases.switch ?? 0),
      phases_ms: record.phases,
      kill_to_decision_ms: decidedAt - killedAt,
      kill_to_switch_ms: switchedAt - killedAt,
      writer_outage_ms: gap.ms,
      acknowledged: acked.length,
      rows_lost: missing.length,
      writer_failures: writer.failures.length,
    });
    assert.ok(switchedAt - killedAt < 10_000, `switched ${switchedAt - killedAt} ms after the kill`);
  }

  test('the killed former primary, restarted, is fenced read-only by the sidecar before anyone writes to it', async () => {
    assert.ok(record, 'needs the failover of the previous test');
    const old = cluster.primary;
    const startedAt = Date.now();
    await old.start();
    // It comes back as an independent primary (not in recovery)...
    assert.equal(await inRecovery(old), false);
    // ...and the sidecar notices at its next probe and fences it.
    await waitFor('the sidecar to fence the returning former primary', 10_000, () => readOnlyDefault(old), 50);
    const fencedAfterMs = Date.now() - startedAt;
    assert.equal(await tryInsert(old, 1_000_000), '25006', 'an INSERT on the fenced former primary fails: read-only transaction');
    // Logged once the fence is complete (its sessions ended), a moment after the setting shows.
    await waitFor('the fence to be logged', 5_000, () =>
      sidecarLog.lines().some((l) => String(l.msg).includes('former primary primary came back writable and was fenced')),
    );
    const status = sidecar.status();
    assert.equal(status.primary, 'standby1');
    assert.equal(status.databases.find((d) => d.name === 'primary')?.demoted, true);
    assert.equal(status.epoch, 1, 'no switch back');
    report('postgres former primary restarted', { fenced_after_start_ms: fencedAfterMs });
  });
});
