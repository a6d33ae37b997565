/**
 * probe_timeout and the response_time rules: the default leaves room above the
 * largest threshold, an explicit value at or below a threshold is refused at
 * load (the guide's rules were dead with the old 5 s default), and a failover's
 * own steps stay bounded by 5 s whatever the default grew to.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { defaultProbeTimeout } from '../../src/config/probe-timeout.js';
import type { AlertRule } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { stepTimeoutMs } from '../../src/failover/procedure.js';
import { configProblems, createSandbox, sqliteConfig } from '../support/cli.js';
import { fromRoot } from '../support/paths.js';

const rule = (threshold: number, more: Partial<AlertRule> = {}): AlertRule => ({ enabled: true, metric: 'response_time', operator: '>', threshold, severity: 'warning', ...more });

describe('defaultProbeTimeout: the largest slow-answer threshold + 5 s, at least 5 s', () => {
  const cases: Array<[string, Record<string, AlertRule>, number]> = [
    ['no rules', {}, 5],
    ['the guide\'s 5000 ms and 10000 ms rules', { w: rule(5000), c: rule(10000, { severity: 'critical' }) }, 15],
    ['a small threshold: 5.1 s', { w: rule(100) }, 5.1],
    ['1500 ms', { w: rule(1500), x: rule(0.5) }, 6.5],
    ['>= counts like >', { w: rule(8000, { operator: '>=' }) }, 13],
    ['a disabled rule does not count', { w: rule(5000), off: rule(60000, { enabled: false }) }, 10],
    ['a "fast answer" rule (<) does not count', { fast: rule(30000, { operator: '<' }) }, 5],
    ['other metrics do not count', { conn: { ...rule(500), metric: 'connection_count' }, err: { ...rule(50), metric: 'error_count' } }, 5],
  ];
  for (const [what, rules, seconds] of cases) test(what, () => assert.equal(defaultProbeTimeout(rules), seconds));
});

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.problems;
  }
  assert.fail('the config was accepted');
};

const yaml = (monitoring: string) => `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///data/p.db" }
  monitoring:
${monitoring}
    alert_rules:
      warning_response: { metric: response_time, operator: ">", threshold: 5000, severity: warning, duration: 60 }
      critical_response: { metric: response_time, operator: ">", threshold: 10000, severity: critical }
      quiet: { enabled: false, metric: response_time, operator: ">", threshold: 60000 }
`;

describe('loading a config', () => {
  test('the guide\'s example and the shipped config get 15 s: their 5 s and 10 s rules can fire', () => {
    assert.equal(loadConfig(fromRoot('test/config/testdata/seed-guide.yaml'), {}, '/srv').monitoring.probe_timeout, 15);
    assert.equal(loadConfig(fromRoot('config/config.yaml'), {}, '/srv').monitoring.probe_timeout, 15);
    assert.equal(parseConfig(yaml('    check_interval: 30'), 'x.yaml', {}).monitoring.probe_timeout, 15);
  });

  test('an explicit probe_timeout above every threshold is kept', () => {
    assert.equal(parseConfig(yaml('    probe_timeout: 10.5'), 'x.yaml', {}).monitoring.probe_timeout, 10.5);
  });

  test('an explicit probe_timeout at or below a threshold is refused, one problem per rule, by path', () => {
    const hint = (ms: number) => `a probe that slow counts as a failure, so the rule could never fire; set probe_timeout above ${ms / 1000} s, or leave it out (the default for these rules is 15 s)`;
    assert.deepEqual(problemsOf(() => parseConfig(yaml('    probe_timeout: 5'), 'x.yaml', {})), [
      `disaster_recovery.monitoring.probe_timeout: 5 s leaves no room above disaster_recovery.monitoring.alert_rules.warning_response.threshold (5000 ms): ${hint(5000)}`,
      `disaster_recovery.monitoring.probe_timeout: 5 s leaves no room above disaster_recovery.monitoring.alert_rules.critical_response.threshold (10000 ms): ${hint(10000)}`,
    ]);
    assert.deepEqual(problemsOf(() => parseConfig(yaml('    probe_timeout: 10'), 'x.yaml', {})), [
      `disaster_recovery.monitoring.probe_timeout: 10 s leaves no room above disaster_recovery.monitoring.alert_rules.critical_response.threshold (10000 ms): ${hint(10000)}`,
    ]);
  });

  test('the real CLI refuses it: exit 2, the rule named', async (t) => {
    const sandbox = createSandbox(t);
    const doc = sqliteConfig(0);
    doc.disaster_recovery.monitoring.probe_timeout = 5;
    const config = sandbox.writeConfig(doc);
    const r = await sandbox.run(['status', '--config', config]);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(
      configProblems(r.stderr).map((p) => p.replace(/: a probe that slow.*$/, '')),
      [
        'disaster_recovery.monitoring.probe_timeout: 5 s leaves no room above disaster_recovery.monitoring.alert_rules.response_time_warning.threshold (5000 ms)',
        'disaster_recovery.monitoring.probe_timeout: 5 s leaves no room above disaster_recovery.monitoring.alert_rules.response_time_critical.threshold (10000 ms)',
      ],
    );
  });
});

describe('a failover is not slowed by a probe_timeout raised for the alert rules', () => {
  test('its steps wait min(probe_timeout, 5 s)', () => {
    const config = parseConfig(yaml(''), 'x.yaml', {});
    assert.equal(config.monitoring.probe_timeout, 15);
    assert.equal(stepTimeoutMs(config), 5000);
    assert.equal(stepTimeoutMs({ ...config, monitoring: { ...config.monitoring, probe_timeout: 1 } }), 1000);
  });
});
