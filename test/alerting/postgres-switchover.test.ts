/**
 * A failover alert about a PostgreSQL primary that still answers, delivered by
 * webhook POST three times at once to the in-process sidecar: one switchover to
 * the streaming standby (fenced, replayed up to the fence, promoted), every row
 * written before it on the new primary, the old one read-only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  APP_DB,
  clusterDatabases,
  inRecovery,
  memoryLogger,
  missingIds,
  startInProcessSidecar,
  startPgCluster,
  tempFolder,
  tryInsert,
  TOKEN,
  writeFailoverConfig,
  type InProcessSidecar,
  type PgCluster,
} from '../support/failover.js';

const ROWS = 300;

function payload(database: string) {
  const alert = {
    status: 'firing',
    labels: { alertname: 'DrResponseTimeCritical', severity: 'critical', rule: 'response_time_critical', dr_action: 'failover', database },
    annotations: { summary: `${database}: response time > 10000 ms` },
    startsAt: '2024-05-01T10:00:00.000Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://127.0.0.1:9090/graph',
    fingerprint: 'a1b2c3d4e5f60718',
  };
  return { version: '4', groupKey: '{}:{}', truncatedAlerts: 0, status: 'firing', receiver: 'dr-sidecar', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://127.0.0.1:9093', alerts: [alert] };
}

describe('a failover alert about an answering PostgreSQL primary', { timeout: 120_000 }, () => {
  const tmp = tempFolder('dr-alert-switchover-');
  const logger = memoryLogger();
  let cluster: PgCluster;
  let running: InProcessSidecar;

  before(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    await cluster.primary.query(`INSERT INTO items (id) SELECT g FROM generate_series(1, ${ROWS}) g`, [], APP_DB);
    const { config } = writeFailoverConfig({ dir: tmp.dir, databases: clusterDatabases(cluster), probeTimeout: 2, cooldown: 300 });
    running = await startInProcessSidecar(config, logger.log);
  });
  after(async () => {
    await running?.stop();
    await cluster?.destroy();
    tmp.cleanup();
  });

  test('delivered 3 times at once: one lossless switchover to standby1, trigger alert', async () => {
    const post = () =>
      fetch(`${running.http.url}/alertmanager/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify(payload('primary')),
        signal: AbortSignal.timeout(20_000),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { duplicates: number } }));
    const answers = await Promise.all([post(), post(), post()]);
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
    assert.deepEqual(answers.map((a) => a.body.duplicates).sort(), [0, 1, 1]);
    await running.sidecar.alerts.drain();

    const history = await running.sidecar.history(10);
    assert.equal(history.length, 1, JSON.stringify(history, null, 2));
    const [done] = history;
    assert.equal(done!.result, 'success', `${done!.error}\n${logger.text()}`);
    assert.equal(done!.trigger, 'alert');
    assert.deepEqual([done!.from, done!.to], ['primary', 'standby1']);
    assert.equal(done!.dataSync?.complete, true, JSON.stringify(done!.dataSync));
    assert.equal(running.sidecar.currentPrimary(), 'standby1');
    const [, standby1] = cluster.all();
    assert.equal(await inRecovery(standby1!), false, 'standby1 promoted');
    assert.deepEqual(await missingIds(standby1!, Array.from({ length: ROWS }, (_, i) => i + 1)), [], 'every row written before is on the new primary');
    assert.equal(await tryInsert(cluster.primary, ROWS + 1), '25006', 'the former primary is fenced (read-only)');
    assert.ok(logger.lines().some((l) => l.msg === 'disaster-recovery switchover completed: standby1 is the primary (epoch 1)'), logger.text());
    const [record] = (await running.sidecar.store.alerts(10)).filter((a) => a.alertname === 'DrResponseTimeCritical');
    assert.equal(record!.result, 'primary -> standby1 (epoch 1; lossless)');
  });
});
