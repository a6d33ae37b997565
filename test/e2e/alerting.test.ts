/**
 * The alerting pipeline end to end, every piece real: the sidecar (the
 * `start-monitoring` CLI subprocess), Prometheus scraping it with the rules the
 * `rules` command generated, Alertmanager with the shipped receiver config
 * posting to the sidecar's webhook with the token from a credentials file, and
 * PostgreSQL primary + streaming standby (or SQLite files) behind it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import type { AlertRecord, FailoverRecord } from '../../src/state/store.js';
import { createSandbox, eventually, freePort, httpGet, type MonitorProcess, type Sandbox } from '../support/cli.js';
import { startPostgres, startStandby, type PgServer } from '../support/postgres.js';
import { startAlertmanager, startPrometheus, type AlertmanagerServer, type PrometheusServer } from '../support/prometheus.js';

const TOKEN = 'e2e-alerting-token-5d3a9b';

interface Pipeline {
  sandbox: Sandbox;
  sidecar: MonitorProcess;
  prometheus: PrometheusServer;
  alertmanager: AlertmanagerServer;
  /** The sidecar's state store, read from this process. */
  store: SqliteStateStore;
  /** Everything each piece said, for failure messages. */
  describe(): string;
}

type Doc = Record<string, unknown> & { disaster_recovery: Record<string, unknown> };

/** Sidecar config: probes every second, failover after 3 failures, and the given sections. */
function sidecarConfig(port: number, databases: Record<string, unknown>, dr: { failover?: object; monitoring?: object; notifications?: object }): Doc {
  return {
    logging: { level: 'INFO' },
    server: { host: '127.0.0.1', port, auth_token: TOKEN },
    state: { path: 'data/dr-state.db' },
    disaster_recovery: {
      enabled: true,
      databases,
      backup: { enable_auto_backup: false },
      failover: { enable_auto_failover: true, health_check_interval: 1, detection_threshold: 3, retry_delay: 1, ...dr.failover },
      monitoring: { check_interval: 1, probe_timeout: 2, alert_rules: {}, ...dr.monitoring },
      ...(dr.notifications ? { notifications: dr.notifications } : {}),
    },
  };
}

/** Sidecar (CLI), its generated rules in Prometheus, Alertmanager posting to its webhook; all stopped after the test. */
async function startPipeline(t: TestContext, sandbox: Sandbox, doc: Doc): Promise<Pipeline> {
  const port = (doc.server as { port: number }).port;
  const config = sandbox.writeConfig(doc as never);
  const rules = await sandbox.run(['rules', '--config', config]);
  assert.equal(rules.code, 0, rules.stderr);
  const sidecar = await sandbox.startMonitoring({ port, args: ['--config', config] });
  t.after(() => sidecar.stop().then(() => undefined, () => undefined));
  const alertmanager = await startAlertmanager({ webhook: `${sidecar.url}/alertmanager/webhook`, token: TOKEN });
  t.after(() => alertmanager.stop());
  const prometheus = await startPrometheus({ target: `127.0.0.1:${port}`, rules: rules.stdout, alertmanager: alertmanager.url.replace(/^http:\/\//, '') });
  t.after(() => prometheus.stop());
  const store = new SqliteStateStore(sandbox.path('data/dr-state.db'));
  t.after(() => store.close());
  const pipeline: Pipeline = {
    sandbox,
    sidecar,
    prometheus,
    alertmanager,
    store,
    describe: () =>
      `--- sidecar ---\n${tail(sidecar.output().stdout + sidecar.output().stderr)}\n--- prometheus ---\n${tail(prometheus.output())}\n--- alertmanager ---\n${tail(alertmanager.output())}`,
  };
  // Prometheus has scraped the sidecar and loaded every generated rule.
  await eventually('Prometheus to scrape the sidecar', 20_000, async () => (await prometheus.query('dr_database_up == 1')).length >= 2, pipeline.describe);
  const loaded = await fetch(`${prometheus.url}/api/v1/rules`).then((r) => r.json() as Promise<{ data: { groups: Array<{ rules: unknown[] }> } }>);
  assert.ok(loaded.data.groups.flatMap((g) => g.rules).length >= 2, 'rules loaded');
  return pipeline;
}

const tail = (text: string, lines = 40) => text.trimEnd().split('\n').slice(-lines).join('\n');

async function alertRecords(store: SqliteStateStore, alertname: string): Promise<AlertRecord[]> {
  return (await store.alerts(1000)).filter((a) => a.alertname === alertname).reverse();
}

/** Sum of a counter's series in the sidecar's /metrics whose labels match. */
async function counter(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await httpGet(`${url}/metrics`)).body;
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The PostgreSQL pair as the sidecar's databases. */
function pgDatabases(primary: PgServer, standby: PgServer): Record<string, unknown> {
  return {
    primary: { type: 'primary', priority: 0, url: primary.url() },
    standby1: { type: 'secondary', priority: 1, url: standby.url() },
  };
}

async function pgPair(t: TestContext): Promise<{ primary: PgServer; standby: PgServer }> {
  const primary = await startPostgres();
  t.after(() => primary.destroy());
  const standby = await startStandby(primary);
  t.after(() => standby.destroy());
  return { primary, standby };
}

/** After the failover settled: exactly one successful failover in the history, and the standby is the primary. */
async function assertOneFailover(p: Pipeline): Promise<FailoverRecord> {
  const history = await p.store.history(100);
  const successes = history.filter((h) => h.result === 'success');
  assert.equal(successes.length, 1, `expected one successful failover, history:\n${JSON.stringify(history, null, 2)}`);
  assert.equal(history.length, 1, `expected nothing else in the history:\n${JSON.stringify(history, null, 2)}`);
  const [done] = successes;
  assert.equal(done!.from, 'primary');
  assert.equal(done!.to, 'standby1');
  const routed = await httpGet(`${p.sidecar.url}/primary`);
  assert.equal(routed.status, 200, routed.body);
  assert.equal((JSON.parse(routed.body) as { name: string }).name, 'standby1');
  return done!;
}

describe('e2e: Prometheus → Alertmanager → sidecar webhook', { timeout: 240_000 }, () => {
  test('primary killed: DrPrimaryDown fires and is delivered while the monitor fails over; exactly one failover', async (t) => {
    const { primary, standby } = await pgPair(t);
    const sandbox = createSandbox(t);
    const port = await freePort();
    // A pre_promote hook of a few seconds (draining a proxy, say) keeps the failover under way long
    // enough for DrPrimaryDown (for: 3 x 1 s) to fire and reach the webhook before the switch lands.
    const p = await startPipeline(t, sandbox, sidecarConfig(port, pgDatabases(primary, standby), { failover: { pre_promote: 'sleep 8' } }));

    const killedAt = Date.now();
    await primary.kill9();

    await eventually('a successful failover in the history', 60_000, async () => (await p.store.history(10)).some((h) => h.result === 'success'), p.describe);
    await eventually('DrPrimaryDown delivered to the webhook', 60_000, async () => (await alertRecords(p.store, 'DrPrimaryDown')).some((a) => a.status === 'firing'), p.describe);
    const [fired] = (await alertRecords(p.store, 'DrPrimaryDown')).filter((a) => a.status === 'firing');
    assert.equal(fired!.database, 'primary');
    assert.equal(fired!.action, 'failover');
    // Its action has run (or it was suppressed at once), and the alert resolved once standby1 took over.
    await eventually('the DrPrimaryDown action to finish', 30_000, async () => {
      const [a] = (await alertRecords(p.store, 'DrPrimaryDown')).filter((r) => r.status === 'firing');
      return a!.outcome !== 'execute' || a!.result !== null;
    }, p.describe);
    await eventually('DrPrimaryDown resolved and delivered', 30_000, async () => (await alertRecords(p.store, 'DrPrimaryDown')).some((a) => a.status === 'resolved'), p.describe);
    // Long enough for any second attempt (monitor retry_delay 1 s, Alertmanager group_interval 1 s) to show.
    await new Promise((r) => setTimeout(r, 4_000));

    const done = await assertOneFailover(p);
    const [record] = (await alertRecords(p.store, 'DrPrimaryDown')).filter((r) => r.status === 'firing');
    if (done.trigger === 'auto') {
      // The monitor acted first: the alert found its failover under way (or the primary replaced) and did nothing.
      assert.ok(record!.outcome === 'suppressed' || record!.result?.startsWith('suppressed: '), JSON.stringify(record));
      assert.equal(await counter(p.sidecar.url, 'dr_alert_notifications_total', { action: 'failover', result: 'executed' }), 0);
      assert.equal(await counter(p.sidecar.url, 'dr_alert_notifications_total', { action: 'failover', result: 'suppressed' }), 1);
    } else {
      assert.equal(done.trigger, 'alert');
      assert.match(record!.result ?? '', /^primary -> standby1/);
    }
    assert.equal(await counter(p.sidecar.url, 'dr_failovers_total', { result: 'success' }), 1);
    t.diagnostic(
      `kill -> failover committed ${seconds(Date.parse(done.finishedAt) - killedAt)} (trigger ${done.trigger}, pre_promote 8 s); ` +
        `kill -> DrPrimaryDown at the webhook ${seconds(Date.parse(fired!.receivedAt) - killedAt)} (${record!.outcome}: ${record!.result ?? record!.why})`,
    );
  });

  test('primary killed: an error_count rule asks for failover before the monitor would; the webhook fails over, the monitor stands down', async (t) => {
    const { primary, standby } = await pgPair(t);
    const sandbox = createSandbox(t);
    const port = await freePort();
    const p = await startPipeline(
      t,
      sandbox,
      sidecarConfig(port, pgDatabases(primary, standby), {
        // The monitor waits for 10 failed probes; the rule fires after the second (critical: failover).
        failover: { detection_threshold: 10 },
        monitoring: { alert_rules: { error_rate_critical: { metric: 'error_count', operator: '>', threshold: 1, severity: 'critical', duration: 10 } } },
      }),
    );

    const killedAt = Date.now();
    await primary.kill9();

    await eventually('a successful failover in the history', 60_000, async () => (await p.store.history(10)).some((h) => h.result === 'success'), p.describe);
    const [fired] = (await alertRecords(p.store, 'DrErrorRateCritical')).filter((a) => a.status === 'firing' && a.database === 'primary');
    assert.ok(fired, `DrErrorRateCritical for primary was delivered first\n${p.describe()}`);
    await eventually('the alert action to finish', 30_000, async () => {
      const [a] = (await alertRecords(p.store, 'DrErrorRateCritical')).filter((r) => r.status === 'firing' && r.database === 'primary');
      return a!.result !== null;
    }, p.describe);
    // Past the monitor's own threshold (10 probes at 1 s): it must see standby1 as the primary and do nothing.
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 14_000 - Date.now())));

    const done = await assertOneFailover(p);
    assert.equal(done.trigger, 'alert', 'the webhook acted first');
    const [record] = (await alertRecords(p.store, 'DrErrorRateCritical')).filter((r) => r.status === 'firing' && r.database === 'primary');
    assert.match(record!.result ?? '', /^primary -> standby1 \(epoch 1; (lossless|not lossless: .+)\)$/);
    assert.equal(await counter(p.sidecar.url, 'dr_alert_notifications_total', { action: 'failover', result: 'executed' }), 1);
    assert.equal(await counter(p.sidecar.url, 'dr_failovers_total', { trigger: 'auto', result: 'success' }), 0);
    t.diagnostic(
      `kill -> DrErrorRateCritical at the webhook ${seconds(Date.parse(fired.receivedAt) - killedAt)}; ` +
        `kill -> failover committed ${seconds(Date.parse(done.finishedAt) - killedAt)} (trigger ${done.trigger})`,
    );
  });

  test('a primary that hangs longer than the guide\'s 5000 ms warning (SIGSTOP) fires DrResponseTimeWarning and is never counted down', async (t) => {
    const { primary, standby } = await pgPair(t);
    const sandbox = createSandbox(t);
    const port = await freePort();
    const p = await startPipeline(
      t,
      sandbox,
      sidecarConfig(port, pgDatabases(primary, standby), {
        failover: { health_check_interval: 0.5 },
        // No probe_timeout: the default leaves room above the largest rule (20 s + 5 s = 25 s); the old default, 5 s, made the warning dead.
        // The critical rule is there to give a loaded machine room: the hang may last up to 20 s before a probe would time out.
        monitoring: {
          check_interval: 0.5,
          probe_timeout: undefined,
          alert_rules: {
            response_time_warning: { enabled: true, metric: 'response_time', operator: '>', threshold: 5000.0, severity: 'warning' },
            response_time_critical: { enabled: true, metric: 'response_time', operator: '>', threshold: 20000.0, severity: 'critical' },
          },
        },
      }),
    );
    const firing = async () => (await p.prometheus.query('ALERTS{alertname="DrResponseTimeWarning",alertstate="firing",database="primary"}')).length === 1;

    // Paused until Prometheus has the alert firing (seen here after 6-7 s), and at most 20 s: 5 s short of the 25 s probe timeout.
    const pausedAt = Date.now();
    primary.pause();
    let firedAfter: number;
    try {
      await eventually('DrResponseTimeWarning firing in Prometheus while the primary hangs', 20_000, firing, p.describe);
      firedAfter = Date.now() - pausedAt;
    } finally {
      primary.resume();
    }
    // Scrapes after the hang: the probe under way answered, a fresh one is fast again.
    await eventually('a fast probe of the primary scraped after the hang', 20_000, async () => (await p.prometheus.query('dr_database_response_time_seconds{database="primary"} < 1')).length === 1, p.describe);

    const scalar = async (expr: string) => {
      const [r] = await p.prometheus.query(expr);
      assert.ok(r, `${expr}: no result\n${p.describe()}`);
      return Number(r.value[1]);
    };
    const window = `${Math.ceil((Date.now() - pausedAt) / 1000) + 30}s`;
    assert.ok((await scalar(`max_over_time(dr_database_response_time_seconds{database="primary"}[${window}])`)) > 5, 'Prometheus saw the slow answer');
    assert.equal(await scalar(`min_over_time(dr_database_up{database="primary"}[${window}])`), 1, 'up in every scrape');
    assert.equal(await scalar(`max_over_time(dr_database_consecutive_failures{database="primary"}[${window}])`), 0, 'no failed probe in any scrape');
    assert.doesNotMatch(p.sidecar.output().stdout, /database primary is down/);
    assert.deepEqual(await p.store.history(10), [], 'no failover');
    t.diagnostic(`SIGSTOP -> DrResponseTimeWarning firing in Prometheus ${seconds(firedAfter)}`);
  });

  test('a response_time_warning-style rule fires: the sidecar records and notifies, nothing else', async (t) => {
    const notifications: Array<Record<string, unknown>> = [];
    const sink = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        notifications.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/notify`;

    const sandbox = createSandbox(t);
    sandbox.writeSqlite('data/images_primary.db', 20);
    sandbox.writeSqlite('data/images_secondary1.db', 20);
    const port = await freePort();
    const p = await startPipeline(
      t,
      sandbox,
      sidecarConfig(
        port,
        {
          primary: { type: 'primary', priority: 0, url: 'sqlite:///data/images_primary.db' },
          secondary1: { type: 'secondary', priority: 1, url: 'sqlite:///data/images_secondary1.db' },
        },
        {
          // 0.001 ms: every probe is "slow". A warning: no action, only a record and a notification.
          monitoring: { alert_rules: { response_time_warning: { metric: 'response_time', operator: '>', threshold: 0.001, severity: 'warning', duration: 1 } } },
          notifications: { webhooks: [sinkUrl], timeout: 2 },
        },
      ),
    );

    const started = Date.now();
    await eventually('DrResponseTimeWarning recorded by the sidecar', 60_000, async () => (await counter(p.sidecar.url, 'dr_alert_notifications_total', { action: 'none', result: 'recorded' })) >= 1, p.describe);
    const deliveredAt = Date.now();
    await eventually('the notification of the alert', 20_000, async () => notifications.some((n) => n.event === 'alert_action' && n.alertname === 'DrResponseTimeWarning'), () => JSON.stringify(notifications));

    const note = notifications.find((n) => n.event === 'alert_action' && n.alertname === 'DrResponseTimeWarning')!;
    assert.equal(note.source, 'dr-sidecar');
    assert.equal(note.action, 'none');
    assert.equal(note.outcome, 'recorded');
    assert.equal(note.status, 'firing');
    assert.match(String(note.database), /^(primary|secondary1)$/);
    assert.match(String(note.summary), /^alert DrResponseTimeWarning \(firing\) for (primary|secondary1): none recorded, the rule asks for no action$/);
    assert.match(String((note.annotations as Record<string, string>).description), /response time > 0\.001 ms for 1s/);

    const records = await alertRecords(p.store, 'DrResponseTimeWarning');
    assert.ok(records.length >= 1);
    for (const r of records) {
      assert.equal(r.action, 'none');
      assert.equal(r.outcome, 'recorded');
      assert.equal(r.result, null);
    }
    assert.match(p.sidecar.output().stdout, /disaster-recovery alert DrResponseTimeWarning \(firing\) for (primary|secondary1): recorded, the rule asks for no action/, 'logged');
    assert.deepEqual(await p.store.history(10), [], 'no failover');
    assert.equal(await counter(p.sidecar.url, 'dr_alert_notifications_total', { result: 'executed' }), 0);
    assert.equal((JSON.parse((await httpGet(`${p.sidecar.url}/primary`)).body) as { name: string }).name, 'primary');
    t.diagnostic(`pipeline ready -> DrResponseTimeWarning recorded by the sidecar ${seconds(deliveredAt - started)}`);
  });
});
