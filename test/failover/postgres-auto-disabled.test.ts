/**
 * Automatic failover switched off by an operator, with the real sidecar process
 * (`disaster-recovery start-monitoring`) and the real CLI: the primary dies and
 * nothing switches, and every view (status --json, /api/status, /metrics, /primary)
 * says so and why. Switched on again, the waiting failover happens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StatusReport } from '../../src/status.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { freePort, httpGet, runCli, startMonitoring, type CliResult, type MonitorProcess } from '../support/cli.js';
import { APP_DB, inRecovery, report, startPgCluster, tempFolder, TOKEN, waitFor, writeFailoverConfig, type PgCluster } from '../support/failover.js';
import type { PgServer } from '../support/postgres.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const auth = { authorization: `Bearer ${TOKEN}` };

describe('PostgreSQL: auto-failover disabled through the CLI while the real sidecar process runs', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  let cluster: PgCluster;
  let primary: PgServer;
  let standby1: PgServer;
  let configFile: string;
  let sidecar: MonitorProcess | undefined;
  const cli = (args: string[]) => runCli(['--config', configFile, ...args], { cwd: tmp.dir, timeoutMs: 60_000 });
  const apiStatus = async () => JSON.parse((await httpGet(`${sidecar!.url}/api/status`, auth)).body) as StatusReport;
  const metric = async (name: string) => {
    const text = (await httpGet(`${sidecar!.url}/metrics`)).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  before(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    [primary, standby1] = cluster.all() as [PgServer, PgServer];
    const port = await freePort();
    configFile = writeFailoverConfig({
      dir: tmp.dir,
      port,
      databases: [
        { name: 'primary', type: 'primary', priority: 0, url: primary.url({ database: APP_DB }) },
        { name: 'standby1', type: 'secondary', priority: 1, url: standby1.url({ database: APP_DB }) },
      ],
      healthCheckInterval: 0.5,
      threshold: 3,
      probeTimeout: 1,
    }).file;
    sidecar = await startMonitoring({ cwd: tmp.dir, port, args: ['--config', configFile] });
    await waitFor('the sidecar to see both databases up', 10_000, async () => (await apiStatus()).databases.every((d) => d.status === 'up'), 100);
  });

  after(async () => {
    await sidecar?.stop('SIGTERM', 10_000).catch(() => undefined);
    await cluster?.destroy();
    tmp.cleanup();
  });

  test('disable-auto-failover, kill -9 the primary: nothing switches, every view says automatic failover is disabled and why', async () => {
    assert.equal(await metric('dr_auto_failover_enabled'), 1);
    const off = await cli(['disable-auto-failover']);
    assert.equal(off.code, 0, show(off));
    assert.match(off.stdout, /automatic failover disabled/);
    // The running sidecar reads the switch from the state store before the primary dies (then it holds the failover).
    await waitFor('the running sidecar to read the switch from the state store', 20_000, async () => (await metric('dr_auto_failover_enabled')) === 0, 50);

    await primary.kill9();
    await waitFor('the sidecar to hold the failover', 20_000, async () => (await apiStatus()).auto_failover.held !== null, 100);
    // Twice the detection threshold (3) of failed probes: well past the point where it would have failed over.
    await waitFor('6 failed probes of the primary', 30_000, async () => (await apiStatus()).databases.find((d) => d.name === 'primary')!.consecutive_failures >= 6, 100);

    const api = await apiStatus();
    assert.equal(api.primary, 'primary');
    assert.equal(api.epoch, 0);
    assert.deepEqual(api.auto_failover.enabled, false);
    assert.equal(api.auto_failover.source, 'operator');
    assert.match(api.auto_failover.held ?? '', /primary primary failed \d+ probes in a row, but automatic failover is disabled/);
    assert.equal(api.databases.find((d) => d.name === 'primary')?.status, 'down');
    assert.ok(api.databases.find((d) => d.name === 'primary')!.consecutive_failures > 3, 'past the detection threshold (3)');
    assert.equal(await metric('dr_auto_failover_enabled'), 0);
    assert.equal(await inRecovery(standby1), true, 'standby1 was not promoted');

    const route = await httpGet(`${sidecar!.url}/primary`);
    assert.equal(route.status, 503, 'the primary is not usable');
    assert.equal((JSON.parse(route.body) as { name: string }).name, 'primary', 'and no other database is named');

    const status = await cli(['status', '--json']);
    const reported = JSON.parse(status.stdout) as StatusReport;
    assert.equal(reported.primary, 'primary');
    assert.equal(reported.auto_failover.enabled, false);
    assert.match(reported.auto_failover.held ?? '', /primary primary is down and automatic failover is disabled/);
    const text = await cli(['status']);
    assert.match(text.stdout, /Auto-failover: +disabled \(set by an operator\)/);
    assert.match(text.stdout, /Failover held: +primary primary is down and automatic failover is disabled/);

    const history = await cli(['history', '--json']);
    assert.equal(history.code, 0, show(history));
    assert.deepEqual(JSON.parse(history.stdout), []);
  });

  test('enable-auto-failover: the sidecar fails over to standby1 within a few seconds', async () => {
    const enabledAt = Date.now();
    const on = await cli(['enable-auto-failover']);
    assert.equal(on.code, 0, show(on));
    const record = await waitFor('the automatic failover', 15_000, async () => {
      const r = JSON.parse((await httpGet(`${sidecar!.url}/api/history`, auth)).body) as FailoverRecordJson[];
      return r.find((x) => x.result === 'success');
    }, 50);
    assert.equal(record.trigger, 'auto');
    assert.equal(record.from, 'primary');
    assert.equal(record.to, 'standby1');
    assert.equal(await inRecovery(standby1), false);
    assert.equal(await metric('dr_auto_failover_enabled'), 1);
    assert.equal(await metric('dr_failovers_total{trigger="auto",result="success"}'), 1);
    const route = await httpGet(`${sidecar!.url}/primary`);
    assert.equal(route.status, 200);
    assert.equal((JSON.parse(route.body) as { name: string }).name, 'standby1');
    const api = await apiStatus();
    assert.equal(api.auto_failover.held, null);
    report('postgres auto-failover re-enabled with the primary already dead (real sidecar process)', {
      enable_to_switch_ms: Date.parse(record.finished_at) - enabledAt,
      phases_ms: record.phases,
    });
  });
});
