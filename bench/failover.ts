/**
 * Failover, both engines, against real databases with the sidecar running in
 * this process (service.start(): health_check_interval 1 s, detection_threshold 3)
 * and an application writing numbered rows through DisasterRecoveryManager.withSession:
 *
 * - detection-to-switch: the history's choose + sync + switch phases (targets:
 *   < 500 ms for a PostgreSQL promotion, < 200 ms for SQLite excluding the final copy);
 * - end-to-end RTO: from the kill (PostgreSQL: kill -9 of the postmaster; SQLite:
 *   the primary's file gone) to the first write that withSession gets acknowledged
 *   by the new primary (target <= 4 s);
 * - rows lost: acknowledged rows missing on the new primary, for a switchover
 *   (target 0, both engines) and a synchronous PostgreSQL failover (target 0);
 *   for a SQLite failover, with the window the history reports (sync_interval copies).
 *
 * PostgreSQL: a primary and three streaming standbys under
 * synchronous_standby_names = 'FIRST 1 (standby1, standby2, standby3)', so the
 * new primary still has a synchronous standby after each of the two switches.
 */
import { performance } from 'node:perf_hooks';
import { DisasterRecoveryManager } from '../src/manager.js';
import { silentLogger } from '../src/log.js';
import { DisasterRecoveryService } from '../src/service.js';
import type { FailoverRecord } from '../src/state/store.js';
import {
  APP_DB,
  memoryLogger as pgMemoryLogger,
  missingIds,
  NumberedWriter,
  startPgCluster,
  writeFailoverConfig,
} from '../test/support/failover.js';
import { imageIds, lostIds, moveAway, sleep, sqliteCluster, startSidecar, Writer } from '../test/support/sqlite-cluster.js';
import { withTimeout } from './cleanup.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';

const HEALTH_CHECK_INTERVAL = 1;
const THRESHOLD = 3;
const SQLITE_SYNC_INTERVAL = 2;
const RTO_TARGET_MS = 4_000;
const PG_SWITCH_TARGET_MS = 500;
const SQLITE_SWITCH_TARGET_MS = 200;
/** Rows the writer gets acknowledged on a database before the next step. */
const ROWS_BEFORE = 150;

const decideToSwitch = (r: FailoverRecord) => (r.phases.choose ?? 0) + (r.phases.sync ?? 0) + (r.phases.switch ?? 0);

function assertSuccess(r: FailoverRecord, what: string): FailoverRecord {
  if (r.result !== 'success') throw new Error(`${what}: ${r.result}: ${r.error}`);
  return r;
}

/** Polls the history for a record matching `match`. */
async function nextRecord(service: DisasterRecoveryService, match: (r: FailoverRecord) => boolean, timeoutMs: number, what: string): Promise<FailoverRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await service.history(20)).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s; history: ${JSON.stringify((await service.history(3)).map((r) => [r.from, r.to, r.result, r.error]))}`);
    await sleep(20);
  }
}

/** A manual failover made by a service of its own, as the CLI makes it. */
async function switchover(config: DisasterRecoveryService['config'], target: string): Promise<FailoverRecord> {
  const cli = await DisasterRecoveryService.open(config, silentLogger());
  try {
    return assertSuccess(await cli.failover({ trigger: 'manual', target, reason: 'bench switchover', ifPrimaryAnswers: 'switch over' }), `switchover to ${target}`);
  } finally {
    await cli.stop();
  }
}

async function sqlite(ctx: BenchContext, report: Report): Promise<void> {
  const cluster = sqliteCluster(
    { after: (fn) => void ctx.cleanup.add('SQLite failover sandbox', fn) },
    {
      rows: 2_000,
      failover: { health_check_interval: HEALTH_CHECK_INTERVAL, detection_threshold: THRESHOLD, sync_interval: SQLITE_SYNC_INTERVAL, cooldown: 0, retry_delay: 1 },
      monitoring: { check_interval: 1, probe_timeout: 1 },
    },
  );
  const config = cluster.load();
  const sidecar = await startSidecar(config);
  const stopSidecar = ctx.cleanup.add('SQLite failover sidecar', () => sidecar.stop());
  const writer = await Writer.open(config, 100_000, 3);
  const stopWriter = ctx.cleanup.add('SQLite failover writer', () => writer.stop());
  writer.start();
  try {
    await writer.waitForAcks('primary', ROWS_BEFORE);

    // Switchover and back, under the writer.
    const there = await switchover(config, 'secondary1');
    await writer.waitForAcks('secondary1', ROWS_BEFORE);
    const lostThere = lostIds(writer.ids(), imageIds(cluster.file('secondary1'))).length;
    const back = await switchover(config, 'primary');
    await writer.waitForAcks('primary', ROWS_BEFORE);
    const lostBack = lostIds(writer.ids(), imageIds(cluster.file('primary'))).length;
    report.check('SQLite switchover: rows lost (there and back)', lostThere + lostBack, 'rows', '=', 0, 0);
    report.check('SQLite switchover: choose + switch (without the final copy)', Math.max(decideToSwitch(there) - (there.phases.sync ?? 0), decideToSwitch(back) - (back.phases.sync ?? 0)), 'ms', '<', SQLITE_SWITCH_TARGET_MS, 0);
    report.info('SQLite switchover: sync (fence + final copy of 2k rows)', Math.max(there.phases.sync ?? 0, back.phases.sync ?? 0), 'ms', 0);

    // Automatic failover: the primary's file is lost.
    await sidecar.service.reinstate('secondary1');
    const copiesBefore = sidecar.service.copies.lastCopyAt('secondary1') ?? 0;
    while ((sidecar.service.copies.lastCopyAt('secondary1') ?? 0) <= Math.max(copiesBefore, Date.parse(back.finishedAt))) await sleep(20);
    await sleep(Math.random() * SQLITE_SYNC_INTERVAL * 1000);
    const killedAt = Date.now();
    const lost = moveAway(cluster.file('primary'));
    ctx.cleanup.add('SQLite primary file', () => lost.restore());
    const auto = assertSuccess(await nextRecord(sidecar.service, (r) => r.trigger === 'auto', 15_000, 'automatic SQLite failover'), 'SQLite failover');
    await writer.waitForAcks('secondary1', 1);
    const firstOnNew = Math.min(...writer.ackedOn('secondary1').map((id) => writer.acked.get(id)!).filter((a) => a.epoch === auto.epoch).map((a) => a.at));
    await writer.waitForAcks('secondary1', 20);
    await stopWriter();
    const onPrimary = writer.ackedOn('primary').filter((id) => writer.acked.get(id)!.epoch === back.epoch);
    const lostRows = lostIds(onPrimary, imageIds(cluster.file('secondary1')));
    const copiedAt = Date.parse(/last copy at (\S+)/.exec(auto.dataSync?.detail ?? '')?.[1] ?? '');
    const allInWindow = lostRows.every((id) => writer.acked.get(id)!.at >= copiedAt);

    report.check('SQLite failover: detection-to-switch (choose + sync + switch)', decideToSwitch(auto), 'ms', '<', SQLITE_SWITCH_TARGET_MS, 0);
    report.check('SQLite failover: RTO, file lost -> first write on secondary1', firstOnNew - killedAt, 'ms', '<=', RTO_TARGET_MS, 0);
    report.info('SQLite failover: detect phase (first failed probe -> decision)', auto.phases.detect ?? NaN, 'ms', 0);
    report.info(
      `SQLite failover: rows lost (sync_interval ${SQLITE_SYNC_INTERVAL} s)`,
      `${lostRows.length} of ${onPrimary.length}, window ${auto.dataSync?.lagSeconds?.toFixed(2) ?? '?'} s${allInWindow ? ', all after the last copy' : ', SOME BEFORE THE LAST COPY'}`,
    );
    if (!allInWindow || auto.dataSync?.method !== 'periodic-copy') report.error('SQLite failover: loss outside the reported window', JSON.stringify(auto.dataSync));
  } finally {
    await stopWriter();
    await stopSidecar();
  }
}

async function postgres(ctx: BenchContext, report: Report): Promise<void> {
  const pg = await startPgCluster({ standbys: 3, synchronous: 'FIRST 1 (standby1, standby2, standby3)' });
  ctx.cleanup.add('PostgreSQL failover cluster', () => pg.destroy());
  const [primary, standby1, standby2, standby3] = pg.all();
  const { config } = writeFailoverConfig({
    dir: ctx.tmp,
    databases: [
      { name: 'primary', type: 'primary', priority: 0, url: primary!.url({ database: APP_DB }) },
      { name: 'standby1', type: 'secondary', priority: 1, url: standby1!.url({ database: APP_DB }) },
      { name: 'standby2', type: 'secondary', priority: 2, url: standby2!.url({ database: APP_DB }) },
      { name: 'standby3', type: 'secondary', priority: 3, url: standby3!.url({ database: APP_DB }) },
    ],
    healthCheckInterval: HEALTH_CHECK_INTERVAL,
    checkInterval: 1,
    threshold: THRESHOLD,
    probeTimeout: 1,
    cooldown: 0,
    retryDelay: 1,
  });
  const log = pgMemoryLogger('warn');
  const sidecar = await DisasterRecoveryService.open(config, log.log, 'create');
  const stopSidecar = ctx.cleanup.add('PostgreSQL failover sidecar', () => sidecar.stop());
  await sidecar.start();
  const manager = await DisasterRecoveryManager.open({ config, logger: silentLogger(), failoverWaitMs: 20_000 });
  ctx.cleanup.add('PostgreSQL failover application', () => manager.stop());
  const writer = new NumberedWriter(manager, { paceMs: 3 }).start();
  const stopWriter = ctx.cleanup.add('PostgreSQL failover writer', () => writer.stop());
  try {
    await writer.waitForAcks(ROWS_BEFORE, 20_000, 'primary');

    // Automatic failover: kill -9 of the primary's postmaster.
    const killedAt = Date.now();
    await primary!.kill9();
    const auto = assertSuccess(await nextRecord(sidecar, (r) => r.trigger === 'auto', 20_000, 'automatic PostgreSQL failover'), 'PostgreSQL failover');
    await writer.waitForAcks(1, 20_000, auto.to!);
    const firstOnNew = writer.on(auto.to!).filter((a) => a.epoch === auto.epoch)[0]!.at;
    await writer.waitForAcks(ROWS_BEFORE, 20_000, auto.to!);
    const newPrimary = pg.all()[config.databases.findIndex((d) => d.name === auto.to)]!;
    const lostAuto = (await missingIds(newPrimary, writer.ids())).length;
    report.check('PostgreSQL failover: detection-to-switch (choose + sync + promote)', decideToSwitch(auto), 'ms', '<', PG_SWITCH_TARGET_MS, 0);
    report.check(`PostgreSQL failover: RTO, kill -9 -> first write on ${auto.to}`, firstOnNew - killedAt, 'ms', '<=', RTO_TARGET_MS, 0);
    report.info('PostgreSQL failover: detect phase (first failed probe -> decision)', auto.phases.detect ?? NaN, 'ms', 0);
    report.check('PostgreSQL synchronous failover: rows lost', lostAuto, 'rows', '=', 0, 0);

    // Switchover from the new primary to the next standby, under the writer.
    const target = config.databases.map((d) => d.name).find((n) => n !== 'primary' && n !== auto.to)!;
    const there = await switchover(config, target);
    await writer.waitForAcks(ROWS_BEFORE, 20_000, target);
    await stopWriter();
    const lostThere = (await missingIds(pg.all()[config.databases.findIndex((d) => d.name === target)]!, writer.ids())).length;
    report.check('PostgreSQL switchover: rows lost', lostThere, 'rows', '=', 0, 0);
    report.info('PostgreSQL switchover: choose + sync + promote (fence, replay, pg_promote)', decideToSwitch(there), 'ms', 0);
    report.info('PostgreSQL: rows acknowledged in all', writer.acks.length, 'rows', 0);
  } catch (error) {
    report.note(`PostgreSQL failover sidecar log tail:\n${log.text().split('\n').slice(-15).join('\n')}`);
    throw error;
  } finally {
    await stopWriter();
    await stopSidecar();
  }
}

export const failoverSection: Section = {
  title: `failover (health_check_interval ${HEALTH_CHECK_INTERVAL} s, detection_threshold ${THRESHOLD})`,
  budgetMs: 110_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const started = performance.now();
    // Each engine bounded on its own: a stuck SQLite part still lets PostgreSQL measure.
    try {
      await withTimeout(sqlite(ctx, report), 40_000, 'SQLite failover');
    } catch (error) {
      report.error('SQLite: could not measure', (error as Error).message);
    }
    await withTimeout(postgres(ctx, report), 60_000, 'PostgreSQL failover');
    report.info('section wall time', (performance.now() - started) / 1000, 's', 1);
  },
};
