/**
 * The dashboards in grafana/dashboards/ are what dashboards/*.ts generates, and
 * they hold together: stable unique uids, every query on the provisioned
 * Prometheus datasource, every per-database query filtered by `$database`,
 * panels laid out without overlaps, metric names that the sidecar exports.
 * (test/dashboards/queries.test.ts runs the queries against a real Prometheus.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { PROMETHEUS_UID } from '../../dashboards/datasource.js';
import { DASHBOARD_UID } from '../../dashboards/disaster-recovery.js';
import { dashboards, DASHBOARDS_DIR, renderDashboard } from '../../dashboards/index.js';
import { fromRoot } from '../support/paths.js';
import { dashboardQueries, loadDashboard, panelsOf, type DashboardJson } from './dashboard-json.js';

/** The metrics of the public contract (DESIGN.md, src/metrics/), and Prometheus's own ALERTS. */
const KNOWN_METRICS = new Set([
  'dr_database_up',
  'dr_database_response_time_seconds',
  'dr_database_connections',
  'dr_database_errors_total',
  'dr_database_size_bytes',
  'dr_database_is_primary',
  'dr_database_in_recovery',
  'dr_database_consecutive_failures',
  'dr_database_last_probe_timestamp_seconds',
  'dr_database_info',
  'dr_replication_lag_seconds',
  'dr_auto_failover_enabled',
  'dr_failovers_total',
  'dr_backups_total',
  'dr_backup_last_success_timestamp_seconds',
  'dr_backup_size_bytes',
  'dr_backup_duration_seconds',
  'dr_alert_notifications_total',
  'dr_drills_total',
  'dr_drill_last_success_timestamp_seconds',
  'dr_drill_write_outage_seconds',
  'dr_drill_switch_back_failed',
  'ALERTS',
]);
/** Metrics without a `database` label: their queries cannot be filtered by it. */
const CLUSTER_METRICS = new Set([
  'dr_auto_failover_enabled',
  'dr_failovers_total',
  'dr_alert_notifications_total',
  'dr_drills_total',
  'dr_drill_last_success_timestamp_seconds',
  'dr_drill_write_outage_seconds',
  'dr_drill_switch_back_failed',
]);
/** Panels that show a per-database metric unfiltered on purpose. */
const UNFILTERED_PANELS = new Set(['Current primary']);

const committed = (file: string) => fromRoot(DASHBOARDS_DIR, file);
const metricsIn = (expr: string) => [...expr.matchAll(/\b(dr_[a-z_]+|ALERTS)\b/g)].map((m) => m[1]!);

describe('generated dashboards', () => {
  for (const { file, build } of dashboards) {
    test(`${DASHBOARDS_DIR}/${file} is what the code generates`, () => {
      assert.ok(fs.existsSync(committed(file)), `${DASHBOARDS_DIR}/${file} is missing: run \`npm run dashboards\` and commit it`);
      const text = fs.readFileSync(committed(file), 'utf8');
      assert.ok(text === renderDashboard(build()), `${DASHBOARDS_DIR}/${file} is stale (differs from dashboards/*.ts): run \`npm run dashboards\` and commit it`);
    });
  }

  test('every JSON file in grafana/dashboards/ comes from the code', () => {
    const files = fs.readdirSync(fromRoot(DASHBOARDS_DIR)).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, dashboards.map((d) => d.file).sort(), 'a dashboard JSON without code (or code without JSON): run `npm run dashboards`, remove orphans');
  });

  test('uids are stable, valid and unique; the Disaster recovery dashboard keeps its uid', () => {
    const uids = dashboards.map(({ file }) => loadDashboard(committed(file)).uid);
    assert.equal(new Set(uids).size, uids.length, `duplicate uid in ${uids.join(', ')}`);
    for (const uid of uids) assert.match(uid, /^[A-Za-z0-9_-]{1,40}$/, `uid "${uid}" is not a valid Grafana uid`);
    const dr = loadDashboard(committed('disaster-recovery.json'));
    assert.equal(dr.uid, DASHBOARD_UID);
    assert.equal(DASHBOARD_UID, 'dr-disaster-recovery', 'the uid is in bookmarks and links: change it only with a reason in the README');
    assert.equal(dr.title, 'Disaster recovery');
  });
});

for (const { file } of dashboards) {
  describe(`${DASHBOARDS_DIR}/${file}`, () => {
    const dashboard: DashboardJson = loadDashboard(committed(file));
    const panels = panelsOf(dashboard);

    test('panel ids are unique', () => {
      const ids = panels.map((p) => p.id);
      assert.ok(ids.every((id) => Number.isInteger(id)), 'every panel has a numeric id');
      assert.equal(new Set(ids).size, ids.length, `duplicate panel id in ${ids.join(', ')}`);
    });

    test('every panel queries the provisioned Prometheus datasource, and every target has an expr', () => {
      for (const panel of panels.filter((p) => p.type !== 'row')) {
        assert.deepEqual(panel.datasource, { type: 'prometheus', uid: PROMETHEUS_UID }, `panel "${panel.title}": datasource`);
        assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has no query`);
        const refIds = new Set<string>();
        for (const target of panel.targets ?? []) {
          assert.ok(typeof target.expr === 'string' && target.expr.trim() !== '', `panel "${panel.title}": a target without expr`);
          assert.deepEqual(target.datasource, { type: 'prometheus', uid: PROMETHEUS_UID }, `panel "${panel.title}": target datasource`);
          assert.ok(target.refId && !refIds.has(target.refId), `panel "${panel.title}": refIds must be set and unique`);
          refIds.add(target.refId);
        }
      }
    });

    test('every query names only metrics the sidecar exports (or ALERTS)', () => {
      for (const q of dashboardQueries(dashboard)) {
        const metrics = metricsIn(q.expr);
        assert.ok(metrics.length > 0, `${q.where}: no dr_ metric in ${q.expr}`);
        for (const m of metrics) assert.ok(KNOWN_METRICS.has(m), `${q.where}: unknown metric ${m} in ${q.expr}`);
      }
    });

    test('the `database` variable lists the databases and every per-database panel is filtered by it', () => {
      const variable = dashboard.templating?.list?.find((v) => v.name === 'database');
      assert.ok(variable, 'no `database` variable');
      assert.equal(variable.type, 'query');
      assert.equal(variable.query, 'label_values(dr_database_info, database)');
      assert.deepEqual(variable.datasource, { type: 'prometheus', uid: PROMETHEUS_UID });
      assert.equal(variable.multi, true);
      assert.equal(variable.includeAll, true);
      assert.equal(variable.allValue, '.*', '"All" must match every database as a regex');
      for (const q of dashboardQueries(dashboard).filter((q) => q.kind === 'panel')) {
        const perDatabase = metricsIn(q.expr).some((m) => !CLUSTER_METRICS.has(m));
        if (!perDatabase || UNFILTERED_PANELS.has(q.title)) continue;
        assert.ok(q.expr.includes('database=~"$database"'), `${q.where}: not filtered by $database: ${q.expr}`);
      }
    });

    test('failovers are annotations: counted failovers and changes of the primary', () => {
      const list = (dashboard.annotations?.list ?? []).filter((a) => a.builtIn !== 1);
      const failovers = list.find((a) => a.name === 'Failovers');
      assert.ok(failovers, 'no "Failovers" annotation');
      assert.match(failovers.expr ?? '', /dr_failovers_total/);
      assert.ok(list.some((a) => /dr_database_is_primary/.test(a.expr ?? '')), 'no annotation on a change of primary');
      for (const a of list) assert.deepEqual(a.datasource, { type: 'prometheus', uid: PROMETHEUS_UID }, `annotation "${a.name}": datasource`);
    });

    test('panels lie on the 24-column grid without overlapping', () => {
      const placed = panels.map((p) => ({ title: p.title, ...p.gridPos! }));
      for (const p of placed) {
        assert.ok(p.x >= 0 && p.w > 0 && p.x + p.w <= 24 && p.h > 0 && p.y >= 0, `panel "${p.title}": gridPos ${JSON.stringify(p)}`);
      }
      for (const [i, a] of placed.entries()) {
        for (const b of placed.slice(i + 1)) {
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          assert.ok(!overlap, `panels "${a.title}" and "${b.title}" overlap`);
        }
      }
    });
  });
}

describe('Grafana provisioning', () => {
  test('the datasource is provisioned with the uid the panels use', () => {
    const doc = parse(fs.readFileSync(fromRoot('grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      apiVersion: number;
      datasources: Array<{ name: string; uid: string; type: string; url: string; access: string }>;
    };
    assert.equal(doc.apiVersion, 1);
    assert.equal(doc.datasources.length, 1);
    const [ds] = doc.datasources;
    assert.equal(ds!.uid, PROMETHEUS_UID);
    assert.equal(ds!.type, 'prometheus');
    assert.equal(ds!.access, 'proxy');
    assert.match(ds!.url, /^http:\/\/prometheus:9090$/, 'the compose service name');
  });

  test('the dashboards provider reads files from a directory, without UI edits', () => {
    const doc = parse(fs.readFileSync(fromRoot('grafana/provisioning/dashboards/dashboards.yml'), 'utf8')) as {
      apiVersion: number;
      providers: Array<{ name: string; type: string; allowUiUpdates: boolean; options: { path: string } }>;
    };
    assert.equal(doc.apiVersion, 1);
    assert.equal(doc.providers.length, 1);
    assert.equal(doc.providers[0]!.type, 'file');
    assert.equal(doc.providers[0]!.allowUiUpdates, false, 'edits in the UI would be lost at the next provisioning: edit dashboards/*.ts');
    assert.match(doc.providers[0]!.options.path, /^\/etc\/grafana\/dashboards\//);
  });
});
