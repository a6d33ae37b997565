/**
 * Switchover of a PostgreSQL primary through the real CLI (`disaster-recovery
 * failover standby1 --reason "维护升级"`) while an application writes numbered rows
 * through withSession and the sidecar runs in this process; then the switch back
 * to the former primary, now an independent server (pg_dump | pg_restore under
 * the fence). Zero acknowledged rows lost, both times.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { DisasterRecoveryManager } from '../../src/manager.js';
import { DisasterRecoveryService } from '../../src/service.js';
import type { StatusReport } from '../../src/status.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { runCli, type CliResult } from '../support/cli.js';
import {
  allUp,
  inRecovery,
  maxId,
  memoryLogger,
  missingIds,
  NumberedWriter,
  report,
  startPgCluster,
  tempFolder,
  tryInsert,
  waitFor,
  walReceiver,
  writeFailoverConfig,
  type PgCluster,
  clusterDatabases,
} from '../support/failover.js';
import { waitForReplay, type PgServer } from '../support/postgres.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

describe('PostgreSQL switchover through the CLI under a writer, and the switch back', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let cluster: PgCluster;
  let primary: PgServer;
  let standby1: PgServer;
  let standby2: PgServer;
  let configFile: string;
  let sidecar: DisasterRecoveryService;
  let manager: DisasterRecoveryManager;
  let writer: NumberedWriter | undefined;
  const cli = (args: string[]) => runCli(['--config', configFile, ...args], { cwd: tmp.dir, timeoutMs: 60_000 });

  before(async () => {
    cluster = await startPgCluster({ standbys: 2 });
    [primary, standby1, standby2] = cluster.all() as [PgServer, PgServer, PgServer];
    const written = writeFailoverConfig({
      dir: tmp.dir,
      databases: clusterDatabases(cluster),
    });
    configFile = written.file;
    sidecar = new DisasterRecoveryService(written.config, sidecarLog.log);
    manager = await DisasterRecoveryManager.open({ config: written.config, logger: silentLogger(), failoverWaitMs: 20_000 });
    await sidecar.start();
    await allUp(sidecar);
    writer = new NumberedWriter(manager).start();
    await writer.waitForAcks(100, 15_000, 'primary');
  });

  after(async () => {
    await writer?.stop().catch(() => undefined);
    await manager?.stop();
    await sidecar?.stop();
    await cluster?.destroy();
    tmp.cleanup();
  });

  test('failover standby1 --reason "维护升级": every acknowledged row on standby1, the old primary read-only and demoted', async () => {
    const w = writer!;
    const requestedAt = Date.now();
    const run = await cli(['failover', 'standby1', '--reason', '维护升级', '--json']);
    const doneAt = Date.now();
    assert.equal(run.code, 0, show(run));
    const record = JSON.parse(run.stdout) as FailoverRecordJson;
    assert.equal(record.result, 'success');
    assert.equal(record.trigger, 'manual');
    assert.equal(record.reason, '维护升级');
    assert.equal(record.from, 'primary');
    assert.equal(record.to, 'standby1');
    assert.equal(record.epoch, 1);
    assert.equal(record.data_sync?.method, 'streaming');
    assert.equal(record.data_sync?.complete, true, 'a switchover waits for the fenced primary\'s last WAL position');
    // Lossless, but a PostgreSQL server that is no longer a standby is kept up to date by nobody: demoted, with what to do.
    assert.equal(record.former_primary?.name, 'primary');
    assert.equal(record.former_primary?.demoted, true);
    assert.match(record.former_primary?.note ?? '', /^primary is demoted: it is read-only and no longer a standby/);
    assert.match(record.former_primary?.note ?? '', /Rebuild it as a standby of standby1 \(pg_rewind, or pg_basebackup/);
    assert.match(record.former_primary?.note ?? '', /then run `disaster-recovery reinstate primary`/);

    await w.waitForAcks(100, 20_000, 'standby1');
    const acked = w.ids();
    const missing = await missingIds(standby1, acked);
    assert.deepEqual(missing, [], `acknowledged rows missing on standby1: ${missing.slice(0, 20).join(', ')}`);
    assert.equal(await inRecovery(standby1), false);

    // The old primary is fenced: read-only for every new transaction, and demoted.
    assert.equal(await tryInsert(primary, 5_000_000), '25006');
    const status = await cli(['status', '--json']);
    assert.equal(status.code, 0, show(status));
    const report1 = JSON.parse(status.stdout) as StatusReport;
    assert.equal(report1.primary, 'standby1');
    assert.equal(report1.epoch, 1);
    assert.equal(report1.databases.find((d) => d.name === 'primary')?.demoted, true);
    assert.equal(report1.databases.find((d) => d.name === 'standby1')?.demoted, false);
    assert.match(report1.databases.find((d) => d.name === 'primary')?.demoted_note ?? '', /Rebuild it as a standby of standby1.*reinstate primary/);
    assert.equal(report1.databases.find((d) => d.name === 'standby1')?.demoted_note, null);
    const statusText = await cli(['status']);
    assert.match(statusText.stdout, /^primary \(demoted\): primary is demoted: .*pg_rewind.*`disaster-recovery reinstate primary`/m, show(statusText));
    const historyText = await cli(['history', '--limit', '1']);
    assert.match(historyText.stdout, /^ {3}former primary: primary is demoted: .*Rebuild it as a standby of standby1/m, show(historyText));

    // standby2 now streams from standby1 and has every row.
    await waitFor('standby2 to stream from standby1', 10_000, async () => (await walReceiver(standby2))?.port === standby1.port);
    await waitForReplay(standby1, standby2);
    assert.deepEqual(await missingIds(standby2, acked), []);

    // The running sidecar follows the shared state.
    await waitFor('the sidecar to see standby1 as the primary', 3_000, () => sidecar.currentPrimary() === 'standby1');
    const onPrimary = w.on('primary');
    const lastOld = onPrimary[onPrimary.length - 1]!;
    const firstNew = w.on('standby1')[0]!;
    report('postgres switchover primary -> standby1 (CLI)', {
      cli_ms: doneAt - requestedAt,
      phases_ms: record.phases,
      writer_outage_ms: firstNew.at - lastOld.at,
      acknowledged: acked.length,
      rows_lost: missing.length,
      writer_failures: w.failures.length,
    });
  });

  test('switch back to the former primary (an independent server now): pg_dump | pg_restore under the fence, zero loss', async () => {
    const w = writer!;
    const requestedAt = Date.now();
    const run = await cli(['failover', 'primary', '--reason', 'maintenance done', '--json']);
    const doneAt = Date.now();
    assert.equal(run.code, 0, show(run));
    const record = JSON.parse(run.stdout) as FailoverRecordJson;
    assert.equal(record.result, 'success');
    assert.equal(record.from, 'standby1');
    assert.equal(record.to, 'primary');
    assert.equal(record.epoch, 2);
    assert.equal(record.data_sync?.method, 'dump-restore');
    assert.equal(record.data_sync?.complete, true);
    // standby2 streams on standby1's timeline, which the former primary never had: it cannot follow,
    // and the history says so instead of claiming it streams.
    assert.match(record.data_sync?.detail ?? '', /standby2: could not follow \(pointed at 127\.0\.0\.1:\d+, but not streaming from it/);
    assert.equal(await walReceiver(standby2), undefined);

    await w.waitForAcks(100, 20_000, 'primary');
    await w.stop();
    const acked = w.ids();
    const missing = await missingIds(primary, acked);
    assert.deepEqual(missing, [], `acknowledged rows missing on the former primary: ${missing.slice(0, 20).join(', ')}`);
    assert.equal(await maxId(primary), Math.max(...acked));
    assert.equal(await tryInsert(primary, 6_000_000), 'ok', 'the former primary accepts writes again');
    assert.equal(await tryInsert(standby1, 6_000_001), '25006', 'standby1 is fenced in its turn');

    const state = await sidecar.refreshState();
    assert.equal(state.epoch, 2);
    assert.deepEqual(state.demoted, ['standby1']);
    const history = await sidecar.history(10);
    assert.deepEqual(
      history.map((r) => [r.from, r.to, r.result]),
      [
        ['standby1', 'primary', 'success'],
        ['primary', 'standby1', 'success'],
      ],
    );
    const onStandby1 = w.on('standby1');
    report('postgres switch back standby1 -> primary (dump|restore, CLI)', {
      cli_ms: doneAt - requestedAt,
      phases_ms: record.phases,
      writer_outage_ms: w.on('primary').find((a) => a.at > onStandby1[onStandby1.length - 1]!.at)!.at - onStandby1[onStandby1.length - 1]!.at,
      acknowledged: acked.length,
      rows_lost: missing.length,
    });
  });
});
