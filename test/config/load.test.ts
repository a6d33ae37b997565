import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, parseConfig, resolveConfigPath } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { fromRoot } from '../support/paths.js';
import { tempDir } from '../support/sqlite.js';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.problems;
  }
  assert.fail('the config was accepted');
};

const base = (overrides = '') => `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///data/p.db" }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///data/s1.db" }
${overrides}`;

describe('the guide\'s configuration is accepted as written', () => {
  test('full example: three databases, the disabled one, alert rules with and without duration, debug', () => {
    const config = loadConfig(fromRoot('test/config/testdata/seed-guide.yaml'), {}, '/srv/crawler');
    assert.equal(config.enabled, true);
    assert.deepEqual(
      config.databases.map((d) => [d.name, d.type, d.priority, d.enabled]),
      [['primary', 'primary', 0, true], ['secondary1', 'secondary', 1, true], ['secondary2', 'secondary', 2, false]],
    );
    assert.equal(config.databases[0]!.target.engine === 'sqlite' && config.databases[0]!.target.file, '/srv/crawler/data/images_primary.db');
    assert.equal(config.backup.backup_dir, '/srv/crawler/backups');
    assert.equal(config.backup.max_backups, 10);
    assert.equal(config.failover.health_check_interval, 30);
    assert.equal(config.failover.detection_threshold, 3);
    assert.equal(config.monitoring.alert_rules.response_time_warning!.duration, 60);
    assert.equal(config.monitoring.alert_rules.response_time_critical!.duration, undefined);
    assert.equal(config.monitoring.alert_rules.response_time_critical!.threshold, 10000);
    assert.equal(config.monitoring.alert_rules.error_rate_critical!.metric, 'error_count');
    assert.equal(config.logging.level, 'debug');
  });

  test('PostgreSQL example inside an application config: other sections kept, password masked and collected', () => {
    const config = loadConfig(fromRoot('test/config/testdata/seed-postgres.yaml'), {});
    assert.equal(config.databases[1]!.displayUrl, 'postgresql://user:***@backup-server:5432/image_crawler_backup');
    assert.ok(config.secrets.includes('password'));
    assert.equal(config.failover.enable_auto_failover, true, 'defaults fill what is left out');
    assert.equal(config.monitoring.check_interval, 30);
    assert.equal(config.server.port, 9898);
    assert.equal(config.server.host, '127.0.0.1');
  });

  test('the shipped config/config.yaml loads', () => {
    const config = loadConfig(fromRoot('config/config.yaml'), {});
    assert.equal(config.databases.filter((d) => d.enabled).length, 2);
    assert.equal(config.server.auth_token, undefined, 'an empty token means no token');
  });
});

describe('environment expansion', () => {
  test('${VAR} and ${VAR:-default} in strings, numbers from variables', () => {
    const config = parseConfig(
      `
server: { port: "\${DR_PORT:-9000}", auth_token: "\${DR_TOKEN}" }
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "postgresql://app:\${PG_PASSWORD}@\${PG_HOST:-localhost}/app" }
  failover: { health_check_interval: "\${HC}" }
`,
      'x.yaml',
      { DR_TOKEN: 'tok', PG_PASSWORD: 'pw:1', HC: '7' },
    );
    assert.equal(config.server.port, 9000);
    assert.equal(config.server.auth_token, 'tok');
    assert.equal(config.failover.health_check_interval, 7);
    assert.equal(config.databases[0]!.url, 'postgresql://app:pw:1@localhost/app');
    assert.deepEqual([...config.secrets].sort(), ['pw%3A1', 'pw:1', 'tok'].sort());
  });

  test('an unset variable without default is a problem naming it; $${ is a literal', () => {
    assert.deepEqual(
      problemsOf(() => parseConfig(base('server: { auth_token: "$${NOT_A_VAR}${DR_MISSING}" }'), 'x.yaml', {})),
      ['server.auth_token: environment variable DR_MISSING is not set (use ${DR_MISSING:-default} for a fallback)'],
    );
    const config = parseConfig(base('server: { auth_token: "a$${B}" }'), 'x.yaml', {});
    assert.equal(config.server.auth_token, 'a${B}');
  });
});

describe('a wrong config is refused with one message per problem, by path', () => {
  const cases: Array<[string, string, string[]]> = [
    ['wrong type', base('  failover: { health_check_interval: "abc" }'), ['disaster_recovery.failover.health_check_interval: expected a positive number']],
    ['negative number', base('  backup: { max_backups: -1 }'), ['disaster_recovery.backup.max_backups: expected a positive whole number']],
    [
      'unknown operator',
      base('  monitoring:\n    alert_rules:\n      r1: { metric: response_time, operator: "=>", threshold: 5 }'),
      ['disaster_recovery.monitoring.alert_rules.r1.operator: expected one of ">", ">=", "<", "<=", "==", "!="'],
    ],
    [
      'unknown metric',
      base('  monitoring:\n    alert_rules:\n      r1: { metric: cpu, operator: ">", threshold: 5 }'),
      ['disaster_recovery.monitoring.alert_rules.r1.metric: expected one of "response_time", "connection_count", "error_count"'],
    ],
    ['unknown key (typo)', base('  failover: { health_check_intervall: 10 }'), ['disaster_recovery.failover: unknown key "health_check_intervall"']],
    [
      'duplicate priority',
      `disaster_recovery:
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///p.db" }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///s1.db" }
    secondary2: { type: secondary, priority: 1, url: "sqlite:///s2.db" }`,
      ['disaster_recovery.databases.secondary2.priority: 1 is also the priority of disaster_recovery.databases.secondary1; priorities must be unique'],
    ],
    [
      'no primary',
      `disaster_recovery:
  databases:
    secondary1: { type: secondary, priority: 1, url: "sqlite:///s1.db" }`,
      ['disaster_recovery.databases: no enabled database has type "primary"'],
    ],
    [
      'only primary disabled',
      `disaster_recovery:
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///p.db", enabled: false }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///s1.db" }`,
      ['disaster_recovery.databases: no enabled database has type "primary"'],
    ],
    [
      'two primaries',
      `disaster_recovery:
  databases:
    a: { type: primary, priority: 0, url: "sqlite:///a.db" }
    b: { type: primary, priority: 1, url: "sqlite:///b.db" }`,
      ['disaster_recovery.databases: "a" and "b" both have type "primary"; exactly one may'],
    ],
    [
      'bad database type and missing url',
      `disaster_recovery:
  databases:
    primary: { type: master, priority: 0 }`,
      ['disaster_recovery.databases.primary.type: expected one of "primary", "secondary"', 'disaster_recovery.databases.primary.url: is required'],
    ],
    [
      'bad URL',
      `disaster_recovery:
  databases:
    primary: { type: primary, priority: 0, url: "mysql://x/y" }`,
      ['disaster_recovery.databases.primary.url: unsupported database scheme "mysql" (expected sqlite or postgresql)'],
    ],
    ['no databases section', 'disaster_recovery:\n  enabled: true\n', ['disaster_recovery.databases: is required']],
    ['no disaster_recovery section', 'crawler: {}\n', ['disaster_recovery: is required']],
    ['port out of range', base('server: { port: 70000 }'), ['server.port: expected a port number <= 65535']],
  ];
  for (const [name, yaml, expected] of cases) {
    test(name, () => assert.deepEqual(problemsOf(() => parseConfig(yaml, 'x.yaml', {})), expected));
  }

  test('several problems at once are all listed', () => {
    const problems = problemsOf(() => parseConfig(base('  failover: { detection_threshold: 0, retry_delay: "x" }'), 'x.yaml', {}));
    assert.deepEqual(problems.sort(), [
      'disaster_recovery.failover.detection_threshold: expected a positive whole number',
      'disaster_recovery.failover.retry_delay: expected a number >= 0',
    ]);
  });

  test('YAML syntax error gives its line', () => {
    const [problem] = problemsOf(() => parseConfig('disaster_recovery:\n  databases:\n    primary: { type: primary\n  enabled: [\n', 'x.yaml', {}));
    assert.match(problem!, /^YAML syntax error at line \d+, column \d+: /);
  });

  test('unreadable file: not found, and a directory', () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.deepEqual(problemsOf(() => loadConfig(path.join(dir, 'nope.yaml'), {})), [`cannot read ${path.join(dir, 'nope.yaml')}: file not found`]);
      fs.mkdirSync(path.join(dir, 'adir.yaml'));
      assert.match(problemsOf(() => loadConfig(path.join(dir, 'adir.yaml'), {}))[0]!, /^cannot read .*adir\.yaml: /);
    } finally {
      cleanup();
    }
  });

  test('the message of the error names the file and each problem on its own line', () => {
    try {
      parseConfig(base('  failover: { health_check_interval: 0 }'), '/etc/dr.yaml', {});
      assert.fail('accepted');
    } catch (error) {
      assert.equal(
        (error as Error).message,
        'invalid configuration in /etc/dr.yaml:\n  - disaster_recovery.failover.health_check_interval: expected a positive number',
      );
    }
  });
});

test('config path: flag, then $DR_CONFIG, then config/config.yaml', () => {
  assert.equal(resolveConfigPath('/a.yaml', { DR_CONFIG: '/b.yaml' }), '/a.yaml');
  assert.equal(resolveConfigPath(undefined, { DR_CONFIG: '/b.yaml' }), '/b.yaml');
  assert.equal(resolveConfigPath(undefined, {}), path.resolve('config/config.yaml'));
});

test('monitoring.integrity_check_interval: 300 s by default, 0 turns it off, a negative value is refused', () => {
  assert.equal(parseConfig(base(), 'x.yaml', {}).monitoring.integrity_check_interval, 300);
  assert.equal(parseConfig(base('  monitoring:\n    integrity_check_interval: 0'), 'x.yaml', {}).monitoring.integrity_check_interval, 0);
  assert.deepEqual(
    problemsOf(() => parseConfig(base('  monitoring:\n    integrity_check_interval: -1'), 'x.yaml', {})),
    ['disaster_recovery.monitoring.integrity_check_interval: expected a number >= 0'],
  );
});
