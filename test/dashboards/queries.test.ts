/**
 * Every query of every dashboard, run against a real Prometheus that scrapes a
 * real sidecar (`disaster-recovery start-monitoring`, a subprocess) watching a
 * SQLite primary and secondary and a PostgreSQL streaming standby, after a
 * failover and a backup made through the CLI and an alert delivered by a real
 * Alertmanager: each query must parse and return data, as the panel would show
 * it in Grafana. No panel is exempt: this setup gives every one of them data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dashboards, DASHBOARDS_DIR } from '../../dashboards/index.js';
import { createSandbox, eventually, freePort, httpGet, sqliteConfig, type MonitorProcess, type Sandbox } from '../support/cli.js';
import { fromRoot } from '../support/paths.js';
import { startPostgres, startStandby, type PgServer } from '../support/postgres.js';
import { startAlertmanager, startPrometheus, type AlertmanagerServer, type PrometheusServer } from '../support/prometheus.js';
import { dashboardQueries, loadDashboard, type DashboardQuery } from './dashboard-json.js';

const TOKEN = 'dashboard-query-check-7d2e';
/** Prometheus scrapes and evaluates every second here. */
const SCRAPE_SECONDS = 1;
/** Grafana's $__interval for a short time range: the datasource's scrape interval. */
const INTERVAL_SECONDS = SCRAPE_SECONDS;
/** Grafana's $__rate_interval: max($__interval + scrape interval, 4 × scrape interval). */
const RATE_INTERVAL_SECONDS = Math.max(INTERVAL_SECONDS + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS);
const DATABASES = ['primary', 'replica', 'secondary1'];

/**
 * The query as Grafana sends it: `$database` is "All" (the variable's allValue `.*`),
 * the interval variables as Grafana computes them for this scrape interval.
 */
function interpolate(expr: string, rangeSeconds: number): string {
  return expr
    .replaceAll('$database', '.*')
    .replaceAll('$__rate_interval', `${RATE_INTERVAL_SECONDS}s`)
    .replaceAll('$__interval', `${INTERVAL_SECONDS}s`)
    .replaceAll('$__range', `${Math.ceil(rangeSeconds)}s`);
}

/** The body of /api/v1/query and /api/v1/query_range, errors included. */
interface PromAnswer {
  status: 'success' | 'error';
  data?: { resultType: string; result: unknown[] };
  errorType?: string;
  error?: string;
}

const describeAnswer = (a: PromAnswer) => JSON.stringify(a).slice(0, 600);

/** GET an API path of Prometheus; a 400/422 answer carries the parse error, so it is returned, not thrown. */
async function promApi(prometheus: PrometheusServer, apiPath: string, params: Record<string, string>): Promise<PromAnswer> {
  const res = await fetch(`${prometheus.url}${apiPath}?${new URLSearchParams(params)}`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as PromAnswer;
}

/** Waits until `expr` has at least `min` series. */
async function waitForSeries(prometheus: PrometheusServer, expr: string, min: number, timeoutMs = 30_000): Promise<void> {
  let last: unknown;
  await eventually(
    `${min} series of ${expr}`,
    timeoutMs,
    async () => {
      last = await prometheus.query(expr).catch((e: unknown) => String(e));
      return Array.isArray(last) && last.length >= min;
    },
    () => `last answer: ${JSON.stringify(last)}\n--- prometheus ---\n${prometheus.output()}`,
  );
}

describe('dashboard queries against a real Prometheus scraping the sidecar', { timeout: 240_000 }, () => {
  let pgPrimary: PgServer | undefined;
  let pgStandby: PgServer | undefined;
  let sandbox: Sandbox | undefined;
  let sidecar: MonitorProcess | undefined;
  let prometheus: PrometheusServer | undefined;
  let alertmanager: AlertmanagerServer | undefined;
  let windowStart = 0;

  before(async () => {
    pgPrimary = await startPostgres();
    pgStandby = await startStandby(pgPrimary);
    sandbox = createSandbox();
    const port = await freePort();
    const doc = sqliteConfig(port);
    const dr = doc.disaster_recovery;
    delete dr.databases.secondary2;
    // The PostgreSQL database is a standby streaming from a server the sidecar does not manage:
    // it reports connections, pg_is_in_recovery and a real replication lag.
    dr.databases.replica = { name: 'replica', type: 'secondary', priority: 2, url: pgStandby.url() };
    dr.failover.sync_interval = 1; // SQLite copies into secondary1 every second: a copy lag before the failover
    dr.backup.enable_auto_backup = false; // the CLI's backup below is the one
    // A rule that fires at once (the standby always has the probe's own session): ALERTS has data, and
    // Alertmanager delivers it to the webhook (a record-only action), so the deliveries panel has too.
    dr.monitoring.alert_rules.dashboard_check = { enabled: true, metric: 'connection_count', operator: '>=', threshold: 1, severity: 'info', action: 'none' };
    const config = sandbox.writeConfig(doc);
    sandbox.writeSqlite('data/images_primary.db', 50);
    sandbox.writeSqlite('data/images_secondary1.db', 50);

    const rules = await sandbox.run(['rules', '--config', config]);
    assert.equal(rules.code, 0, `disaster-recovery rules failed:\n${rules.stderr}`);

    windowStart = Date.now() / 1000;
    sidecar = await sandbox.startMonitoring({ port, args: ['--config', config], env: { DR_AUTH_TOKEN: TOKEN } });
    alertmanager = await startAlertmanager({ webhook: `${sidecar.url}/alertmanager/webhook`, token: TOKEN });
    prometheus = await startPrometheus({ target: `127.0.0.1:${port}`, rules: rules.stdout, alertmanager: new URL(alertmanager.url).host });
    await waitForSeries(prometheus, 'dr_database_up == 1', DATABASES.length);
    await waitForSeries(prometheus, 'dr_replication_lag_seconds{database="secondary1"}', 1);
    await waitForSeries(prometheus, 'ALERTS{alertname="DrDashboardCheck", alertstate="firing"}', 1);

    const failover = await sandbox.run(['failover', 'secondary1', '--reason', 'dashboard query check', '--config', config], { timeoutMs: 60_000 });
    assert.equal(failover.code, 0, `disaster-recovery failover secondary1 failed:\n${failover.stdout}${failover.stderr}`);
    await waitForSeries(prometheus, 'dr_database_is_primary{database="secondary1"} == 1', 1);

    const backup = await sandbox.run(['backup', '--config', config], { timeoutMs: 60_000 });
    assert.equal(backup.code, 0, `disaster-recovery backup failed (does the backup command exist yet?):\n${backup.stdout}${backup.stderr}`);
    await waitForSeries(prometheus, 'dr_backup_last_success_timestamp_seconds', 1);

    // Both drills, carried out by the sidecar (the CLI hands them over): the Drills panels have data.
    const drill = await sandbox.run(['drill', '--config', config], { timeoutMs: 120_000 });
    assert.equal(drill.code, 0, `disaster-recovery drill failed:\n${drill.stdout}${drill.stderr}`);
    await waitForSeries(prometheus, 'dr_drill_write_outage_seconds', 2);
    await waitForSeries(prometheus, 'dr_drill_last_success_timestamp_seconds', 2);

    await waitForSeries(prometheus, 'dr_alert_notifications_total{action="none", result="recorded"}', 1);
    // A few more scrapes, so the rate windows after the changes hold several samples.
    await new Promise((r) => setTimeout(r, (RATE_INTERVAL_SECONDS + 2) * 1000));
  });

  after(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await sidecar?.stop().catch(() => undefined);
    await pgStandby?.destroy();
    await pgPrimary?.destroy();
    sandbox?.remove();
  });

  test('the sidecar is a healthy scrape target', async () => {
    const up = await prometheus!.query('up{job="dr-sidecar"}');
    assert.deepEqual(up.map((s) => s.value[1]), ['1'], JSON.stringify(up));
    assert.equal((await httpGet(`${sidecar!.url}/primary/secondary1`)).status, 200, 'the CLI failover made secondary1 the primary');
  });

  test('the failover the CLI made is counted in the sidecar\'s dr_failovers_total', async () => {
    // The CLI runs the failover in its own process; the dashboard reads the sidecar's counter.
    const [series] = await prometheus!.query('dr_failovers_total{trigger="manual", result="success"}');
    const value = Number(series?.value[1] ?? NaN);
    assert.ok(
      value >= 1,
      `dr_failovers_total{trigger="manual",result="success"} is ${value} after \`disaster-recovery failover secondary1\`: ` +
        'the sidecar counts only the failovers it ran itself, so failovers made by the CLI are missing from the Failovers panels and annotation',
    );
  });

  test('the `database` variable query lists every database', async () => {
    // label_values(dr_database_info, database) is this API call in Grafana.
    const res = await fetch(`${prometheus!.url}/api/v1/label/database/values?${new URLSearchParams({ 'match[]': 'dr_database_info' })}`);
    const body = (await res.json()) as { data: string[] };
    assert.deepEqual(body.data.sort(), DATABASES);
  });

  for (const { file } of dashboards) {
    const dashboard = loadDashboard(fromRoot(DASHBOARDS_DIR, file));
    for (const q of dashboardQueries(dashboard)) {
      test(`${file}: ${q.where} returns data`, async () => {
        await checkQuery(prometheus!, q, windowStart);
      });
    }
  }
});

/**
 * Panels run as instant queries at "now" (the value a stat shows, the newest point of a
 * graph); annotations as a range query over the whole test, as Grafana runs them.
 */
async function checkQuery(prometheus: PrometheusServer, q: DashboardQuery, windowStart: number): Promise<void> {
  const now = Date.now() / 1000;
  const expr = interpolate(q.expr, now - windowStart);
  assert.ok(!expr.includes('$'), `${q.where}: a variable left after interpolation: ${expr}`);
  const answer =
    q.kind === 'annotation'
      ? await promApi(prometheus, '/api/v1/query_range', { query: expr, start: String(Math.floor(windowStart)), end: String(Math.ceil(now)), step: String(INTERVAL_SECONDS) })
      : await promApi(prometheus, '/api/v1/query', { query: expr });
  assert.equal(answer.status, 'success', `${q.where}: ${expr}\nPrometheus: ${answer.errorType}: ${answer.error}`);
  const result = answer.data?.result;
  assert.ok(Array.isArray(result) && result.length > 0, `${q.where}: no data for ${expr}\n${describeAnswer(answer)}`);
}
