/**
 * Alert rules of the config → Prometheus alerting rules: PromQL and units per
 * metric and operator, labels the webhook acts on, the built-in rules, and the
 * shipped files (the committed rule file is what `disaster-recovery rules`
 * prints; promtool and amtool accept the rules and both configs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { actionOf, alertName, builtInRules, prometheusRules, renderRuleFile, toPrometheusRule, type PrometheusRule } from '../../src/alerting/rules.js';
import { parseConfig, type Config } from '../../src/config/load.js';
import { alertRuleSchema, ALERT_OPERATORS, type AlertRule } from '../../src/config/schema.js';
import { runCli } from '../support/cli.js';
import { fromRoot, repoRoot } from '../support/paths.js';
import { requireTool } from '../support/tools.js';

/** A rule as the config file would give it (defaults applied by the schema). */
const rule = (raw: Record<string, unknown>): AlertRule => alertRuleSchema.parse(raw);

/** A config with two SQLite databases and the given sections merged in. */
function config(extra: { backup?: string; failover?: string; monitoring?: string } = {}): Config {
  const yaml = `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///tmp/p.db" }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///tmp/s.db" }
  backup: { ${extra.backup ?? ''} }
  failover: { ${extra.failover ?? ''} }
  monitoring: { ${extra.monitoring ?? ''} }
`;
  return parseConfig(yaml, '/etc/dr/config.yaml', {});
}

const byAlert = (rules: PrometheusRule[], name: string): PrometheusRule => {
  const found = rules.find((r) => r.alert === name);
  assert.ok(found, `no rule ${name} in ${rules.map((r) => r.alert).join(', ')}`);
  return found;
};

describe('rules: each configured rule as PromQL, in the metric\'s base units', () => {
  const cases: Array<{ what: string; rule: Record<string, unknown>; expr: string; for?: string }> = [
    {
      what: 'response_time: milliseconds in the config, seconds in the metric; duration is for:',
      rule: { metric: 'response_time', operator: '>', threshold: 5000.0, severity: 'warning', duration: 60 },
      expr: 'dr_database_response_time_seconds > 5 and on (database) dr_database_up == 1',
      for: '60s',
    },
    {
      what: 'response_time without duration fires at once',
      rule: { metric: 'response_time', operator: '>', threshold: 10000.0, severity: 'critical' },
      expr: 'dr_database_response_time_seconds > 10 and on (database) dr_database_up == 1',
    },
    {
      what: 'response_time: fractions of a millisecond without float noise',
      rule: { metric: 'response_time', operator: '>=', threshold: 4.35 },
      expr: 'dr_database_response_time_seconds >= 0.00435 and on (database) dr_database_up == 1',
    },
    {
      what: 'response_time: a tiny threshold',
      rule: { metric: 'response_time', operator: '>', threshold: 0.001, duration: 1 },
      expr: 'dr_database_response_time_seconds > 0.000001 and on (database) dr_database_up == 1',
      for: '1s',
    },
    {
      what: 'error_count with duration: increase over that window, no for:',
      rule: { metric: 'error_count', operator: '>', threshold: 10, severity: 'critical', duration: 300 },
      expr: 'increase(dr_database_errors_total[300s]) > 10',
    },
    {
      what: 'error_count without duration: a 300 s window',
      rule: { metric: 'error_count', operator: '>=', threshold: 3 },
      expr: 'increase(dr_database_errors_total[300s]) >= 3',
    },
    {
      what: 'error_count with duration 0: the 300 s window (a 0 s window never fires)',
      rule: { metric: 'error_count', operator: '>', threshold: 1, duration: 0 },
      expr: 'increase(dr_database_errors_total[300s]) > 1',
    },
    {
      what: 'error_count with a short window',
      rule: { metric: 'error_count', operator: '>', threshold: 0, duration: 30 },
      expr: 'increase(dr_database_errors_total[30s]) > 0',
    },
    {
      what: 'connection_count: the gauge as it is',
      rule: { metric: 'connection_count', operator: '>', threshold: 100, severity: 'warning' },
      expr: 'dr_database_connections > 100',
    },
    {
      what: 'connection_count with duration: for:',
      rule: { metric: 'connection_count', operator: '<', threshold: 1, duration: 120 },
      expr: 'dr_database_connections < 1',
      for: '120s',
    },
    {
      what: 'duration 0 elsewhere: no for:',
      rule: { metric: 'connection_count', operator: '>', threshold: 5, duration: 0 },
      expr: 'dr_database_connections > 5',
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const r = toPrometheusRule('my_rule', rule(c.rule));
      assert.equal(r.expr, c.expr);
      assert.equal(r.for, c.for);
      if (c.for === undefined) assert.ok(!('for' in r), 'no for: key at all');
    });
  }

  test('every operator is carried into the expression, for every metric', () => {
    for (const metric of ['response_time', 'connection_count', 'error_count']) {
      for (const operator of ALERT_OPERATORS) {
        const r = toPrometheusRule('x', rule({ metric, operator, threshold: 2000 }));
        const threshold = metric === 'response_time' ? 2 : 2000;
        assert.ok(r.expr.includes(` ${operator} ${threshold}`), `${metric} ${operator}: ${r.expr}`);
      }
    }
  });

  test('annotations say what happened in words, response times as durations', () => {
    const r = toPrometheusRule('response_time_warning', rule({ metric: 'response_time', operator: '>', threshold: 5000, duration: 60 }));
    assert.equal(r.annotations.summary, '{{ $labels.database }}: response time > 5000 ms');
    assert.equal(
      r.annotations.description,
      'Rule response_time_warning of the disaster-recovery config: response_time of database {{ $labels.database }} is {{ $value | humanizeDuration }} (response time > 5000 ms for 60s).',
    );
    const e = toPrometheusRule('errors', rule({ metric: 'error_count', operator: '>', threshold: 10, duration: 300 }));
    assert.equal(e.annotations.summary, '{{ $labels.database }}: > 10 failed probes within 300s');
  });
});

describe('rules: names and labels', () => {
  test('alert names in Prometheus style', () => {
    assert.equal(alertName('response_time_warning'), 'DrResponseTimeWarning');
    assert.equal(alertName('error-rate.critical'), 'DrErrorRateCritical');
    assert.equal(alertName('connections2high'), 'DrConnections2high');
  });

  const labelCases: Array<{ severity?: string; action?: string; dr_action: string; what: string }> = [
    { severity: 'critical', dr_action: 'failover', what: 'critical → failover by default' },
    { severity: 'warning', dr_action: 'none', what: 'warning → none by default' },
    { severity: 'info', dr_action: 'none', what: 'info → none by default' },
    { dr_action: 'none', what: 'no severity: warning, so none' },
    { severity: 'warning', action: 'backup', dr_action: 'backup', what: 'an explicit action wins: backup' },
    { severity: 'critical', action: 'none', dr_action: 'none', what: 'an explicit action wins: none on a critical rule' },
    { severity: 'info', action: 'failover', dr_action: 'failover', what: 'an explicit action wins: failover on an info rule' },
  ];
  for (const c of labelCases) {
    test(`labels: ${c.what}`, () => {
      const raw = { metric: 'connection_count', operator: '>', threshold: 1, ...(c.severity ? { severity: c.severity } : {}), ...(c.action ? { action: c.action } : {}) };
      const r = toPrometheusRule('the_rule', rule(raw));
      assert.deepEqual(r.labels, { severity: c.severity ?? 'warning', rule: 'the_rule', dr_action: c.dr_action });
      assert.equal(actionOf(rule(raw)), c.dr_action);
    });
  }

  test('the database label comes from the series: no rule aggregates it away', () => {
    for (const r of prometheusRules(config({ monitoring: 'alert_rules: { a: { metric: error_count, operator: ">", threshold: 1 } }' })).groups.flatMap((g) => g.rules)) {
      assert.doesNotMatch(r.expr, /\b(sum|avg|max|min|count)\s*(by|without)?\s*\(/, r.expr);
      assert.ok(!('database' in r.labels), `${r.alert} sets no database label of its own`);
    }
  });
});

describe('rules: built-in rules and the rule file', () => {
  test('primary down: for detection_threshold x the primary\'s probe interval, asks for failover', () => {
    const rules = builtInRules(config({ failover: 'health_check_interval: 10, detection_threshold: 4', monitoring: 'check_interval: 30' }));
    const down = byAlert(rules, 'DrPrimaryDown');
    assert.equal(down.expr, 'dr_database_up == 0 and on (database) dr_database_is_primary == 1');
    assert.equal(down.for, '40s');
    assert.deepEqual(down.labels, { severity: 'critical', rule: 'primary_down', dr_action: 'failover' });
    // check_interval shorter than health_check_interval: the primary is probed every check_interval.
    assert.equal(byAlert(builtInRules(config({ failover: 'health_check_interval: 30, detection_threshold: 3', monitoring: 'check_interval: 1' })), 'DrPrimaryDown').for, '3s');
  });

  test('replication lag: max_lag_on_failover when set, else twice sync_interval but at least 60 s', () => {
    assert.equal(byAlert(builtInRules(config({ failover: 'max_lag_on_failover: 15' })), 'DrReplicationLagHigh').expr, 'dr_replication_lag_seconds > 15');
    assert.equal(byAlert(builtInRules(config({ failover: 'sync_interval: 90' })), 'DrReplicationLagHigh').expr, 'dr_replication_lag_seconds > 180');
    assert.equal(byAlert(builtInRules(config({ failover: 'sync_interval: 10' })), 'DrReplicationLagHigh').expr, 'dr_replication_lag_seconds > 60');
    assert.deepEqual(byAlert(builtInRules(config()), 'DrReplicationLagHigh').labels, { severity: 'warning', rule: 'replication_lag_high', dr_action: 'none' });
  });

  test('backup too old: only with enable_auto_backup, at 2 x backup_interval + 60 s, asks for a backup', () => {
    const on = byAlert(builtInRules(config({ backup: 'enable_auto_backup: true, backup_interval: 600' })), 'DrBackupTooOld');
    assert.equal(on.expr, 'time() - dr_backup_last_success_timestamp_seconds > 1260');
    assert.deepEqual(on.labels, { severity: 'warning', rule: 'backup_too_old', dr_action: 'backup' });
    const off = builtInRules(config({ backup: 'enable_auto_backup: false' }));
    assert.deepEqual(off.map((r) => r.alert), ['DrPrimaryDown', 'DrReplicationLagHigh', 'DrArchiveSlotRetainedHigh']);
  });

  test('archive slot: warns at 80% of max_slot_wal_keep_mb held for 5 minutes, asks for nothing', () => {
    const slot = byAlert(builtInRules(config({ backup: 'archive: { enabled: true, max_slot_wal_keep_mb: 100 }' })), 'DrArchiveSlotRetainedHigh');
    assert.equal(slot.expr, 'dr_archive_slot_retained_bytes > 83886080');
    assert.equal(slot.for, '5m');
    assert.deepEqual(slot.labels, { severity: 'warning', rule: 'archive_slot_retained_high', dr_action: 'none' });
  });

  test('disabled rules are left out; the others keep the config\'s order', () => {
    const c = config({
      monitoring: `alert_rules: {
        b_first: { metric: connection_count, operator: ">", threshold: 1 },
        off: { enabled: false, metric: connection_count, operator: ">", threshold: 1 },
        off_text: { enabled: "false", metric: error_count, operator: ">", threshold: 1 },
        a_last: { metric: error_count, operator: ">", threshold: 1 } }`,
    });
    const groups = prometheusRules(c).groups;
    assert.deepEqual(groups.map((g) => g.name), ['dr-sidecar-builtin', 'dr-sidecar-config']);
    assert.deepEqual(groups[1]!.rules.map((r) => r.alert), ['DrBFirst', 'DrALast']);
  });

  test('the rule file says where it came from and parses back to the same rules', () => {
    const c = config({ monitoring: 'alert_rules: { slow: { metric: response_time, operator: ">", threshold: 250, duration: 30 } }' });
    const text = renderRuleFile(c);
    assert.match(text, /^# Generated by `disaster-recovery rules` from config\.yaml; do not edit by hand\.\n/);
    assert.deepEqual(parse(text), JSON.parse(JSON.stringify(prometheusRules(c))));
  });

  test('promtool check rules accepts every metric, operator and unit the generator can produce', () => {
    const promtool = requireTool('promtool', 'apt-get install -y prometheus');
    const rules: string[] = [];
    let i = 0;
    for (const metric of ['response_time', 'connection_count', 'error_count']) {
      for (const operator of ALERT_OPERATORS) {
        for (const [threshold, duration] of [[5000, 60], [0.0001, undefined], [12.5, 0], [1e6, 3600]] as const) {
          for (const severity of ['info', 'warning', 'critical']) {
            rules.push(`r${i++}: { metric: ${metric}, operator: "${operator}", threshold: ${threshold}, severity: ${severity}${duration === undefined ? '' : `, duration: ${duration}`} }`);
          }
        }
      }
    }
    const c = config({ backup: 'enable_auto_backup: true', monitoring: `alert_rules: { ${rules.join(', ')} }` });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dr-rules-'));
    try {
      const file = path.join(dir, 'all.rules.yml');
      writeFileSync(file, renderRuleFile(c));
      const check = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      assert.match(check.stdout, new RegExp(`SUCCESS: ${rules.length + 4} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rules: the shipped Prometheus and Alertmanager files', () => {
  test('prometheus/rules/dr.rules.yml is what `disaster-recovery rules` prints for config/config.yaml', async () => {
    const printed = await runCli(['rules', '--config', 'config/config.yaml'], { cwd: repoRoot });
    assert.equal(printed.code, 0, printed.stderr);
    const committed = readFileSync(fromRoot('prometheus/rules/dr.rules.yml'), 'utf8');
    assert.equal(committed, printed.stdout, 'the committed rule file is stale: run `npx disaster-recovery rules > prometheus/rules/dr.rules.yml`');
  });

  test('promtool check rules prometheus/rules/dr.rules.yml', () => {
    const promtool = requireTool('promtool', 'apt-get install -y prometheus');
    const r = spawnSync(promtool, ['check', 'rules', fromRoot('prometheus/rules/dr.rules.yml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 8 rules found/);
  });

  test('promtool test rules prometheus/rules/dr.rules.test.yml: each rule fires, and stays quiet, where it should', () => {
    const promtool = requireTool('promtool', 'apt-get install -y prometheus');
    const file = fromRoot('prometheus/rules/dr.rules.test.yml');
    const r = spawnSync(promtool, ['test', 'rules', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
    // Every rule of the file has at least one test that expects it to fire.
    const tests = parse(readFileSync(file, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    const rules = (parse(readFileSync(fromRoot('prometheus/rules/dr.rules.yml'), 'utf8')) as { groups: Array<{ rules: PrometheusRule[] }> }).groups.flatMap((g) => g.rules);
    for (const { alert } of rules) {
      assert.ok(firing.has(alert), `no test in dr.rules.test.yml expects ${alert} to fire`);
      assert.ok(quiet.has(alert), `no test in dr.rules.test.yml covers ${alert}`);
    }
  });

  test('promtool check config prometheus/prometheus.yml (with the rule file it loads)', () => {
    const promtool = requireTool('promtool', 'apt-get install -y prometheus');
    const r = spawnSync(promtool, ['check', 'config', fromRoot('prometheus/prometheus.yml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 1 rule files found/);
    assert.match(r.stdout, /is valid prometheus config file syntax/);
  });

  test('amtool check-config prometheus/alertmanager.yml; its webhook is the sidecar\'s route', () => {
    const amtool = requireTool('amtool', 'apt-get install -y prometheus-alertmanager');
    const file = fromRoot('prometheus/alertmanager.yml');
    const r = spawnSync(amtool, ['check-config', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
    const am = parse(readFileSync(file, 'utf8')) as { receivers: Array<{ webhook_configs?: Array<{ url: string; send_resolved?: boolean; http_config?: { authorization?: unknown } }> }> };
    const hooks = am.receivers.flatMap((rc) => rc.webhook_configs ?? []);
    assert.ok(hooks.length > 0, 'a webhook receiver');
    for (const hook of hooks) {
      assert.match(hook.url, /^http:\/\/127\.0\.0\.1:9898\/alertmanager\/webhook$/);
      assert.ok(hook.http_config?.authorization, 'the webhook sends the token');
    }
  });
});
