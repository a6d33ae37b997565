import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
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

  test('PostgreSQL example inside an application config: other sections kept, password masked, too short for the safety net', () => {
    const config = loadConfig(fromRoot('test/config/testdata/seed-postgres.yaml'), {});
    assert.equal(config.databases[1]!.displayUrl, 'postgresql://user:***@backup-server:5432/image_crawler_backup');
    assert.ok(!config.secrets.includes('password'), '"password" is a word: replacing it everywhere garbled "password authentication failed"');
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
      { DR_TOKEN: 'tok-0123456789abcdef', PG_PASSWORD: 'pw:1-long-enough', HC: '7' },
    );
    assert.equal(config.server.port, 9000);
    assert.equal(config.server.auth_token, 'tok-0123456789abcdef');
    assert.equal(config.failover.health_check_interval, 7);
    assert.equal(config.databases[0]!.url, 'postgresql://app:pw:1-long-enough@localhost/app');
    assert.deepEqual([...config.secrets].sort(), ['pw%3A1-long-enough', 'pw:1-long-enough', 'tok-0123456789abcdef'].sort());
  });

  test('an unset variable without default is a problem naming it; $${ is a literal', () => {
    assert.deepEqual(
      problemsOf(() => parseConfig(base('server: { auth_token: "$${NOT_A_VAR}${DR_MISSING}" }'), 'x.yaml', {})),
      ['server.auth_token: environment variable DR_MISSING is not set (use ${DR_MISSING:-default} for a fallback)'],
    );
    const config = parseConfig(base('server: { auth_token: "a$${B}-0123456789abc" }'), 'x.yaml', {});
    assert.equal(config.server.auth_token, 'a${B}-0123456789abc');
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

describe('two entries for one database are refused at load, naming both', () => {
  const twoDatabases = (primaryUrl: string, secondaryUrl: string) => `
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "${primaryUrl}" }
    secondary1: { type: secondary, priority: 1, url: "${secondaryUrl}" }
`;
  const refusal = (what: string) =>
    `disaster_recovery.databases.secondary1.url: is the same database as disaster_recovery.databases.primary.url (${what}); ` +
    'one database cannot be its own secondary: a failover between them would fence the data it promotes';

  const samePostgres: Array<[string, string, string]> = [
    ['localhost and 127.0.0.1', 'postgresql://user:pw@localhost:5432/image_crawler_primary', 'postgresql://other@127.0.0.1:5432/image_crawler_primary'],
    ['127.0.0.1 and [::1], default port', 'postgresql://user@127.0.0.1/images', 'postgresql://user@[::1]:5432/images'],
    ['host names in other case', 'postgresql://user@DB-1.Example.com:6432/images', 'postgresql+psycopg2://user@db-1.example.com:6432/images'],
  ];
  for (const [title, a, b] of samePostgres) {
    test(`PostgreSQL, same server and database: ${title}`, () => {
      const problems = problemsOf(() => parseConfig(twoDatabases(a, b), 'x.yaml', {}));
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0]!, /^disaster_recovery\.databases\.secondary1\.url: is the same database as disaster_recovery\.databases\.primary\.url \(database \S+ on /);
    });
  }

  test('PostgreSQL: the guide\'s two databases on one server, or one name on two ports, are two databases', () => {
    parseConfig(twoDatabases('postgresql://user@localhost:5432/image_crawler_primary', 'postgresql://user@localhost:5432/image_crawler_backup'), 'x.yaml', {});
    parseConfig(twoDatabases('postgresql://user@localhost:5432/images', 'postgresql://user@localhost:5433/images'), 'x.yaml', {});
  });

  test('SQLite: the same file through ".."', () => {
    const problems = problemsOf(() => parseConfig(twoDatabases('sqlite:///data/p.db', 'sqlite:///data/../data/p.db'), 'x.yaml', {}, '/srv/app'));
    assert.deepEqual(problems, [refusal('the file /srv/app/data/p.db')]);
  });

  test('SQLite: the same file through a linked folder, a linked file, and a linked folder before the file exists', () => {
    const tmp = tempDir();
    try {
      const dir = fs.realpathSync(tmp.dir);
      fs.mkdirSync(path.join(dir, 'real'));
      fs.writeFileSync(path.join(dir, 'real', 'p.db'), '');
      fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'linked'));
      fs.symlinkSync(path.join(dir, 'real', 'p.db'), path.join(dir, 'alias.db'));
      const real = path.join(dir, 'real', 'p.db');
      for (const other of ['linked/p.db', 'alias.db']) {
        const problems = problemsOf(() => parseConfig(twoDatabases(`sqlite:///real/p.db`, `sqlite:///${other}`), 'x.yaml', {}, dir));
        assert.deepEqual(problems, [refusal(`the file ${real}`)], other);
      }
      const future = problemsOf(() => parseConfig(twoDatabases('sqlite:///real/new.db', 'sqlite:///linked/new.db'), 'x.yaml', {}, dir));
      assert.deepEqual(future, [refusal(`the file ${path.join(dir, 'real', 'new.db')}`)]);
      // Two different files in the same folder stay two databases.
      parseConfig(twoDatabases('sqlite:///real/p.db', 'sqlite:///linked/s1.db'), 'x.yaml', {}, dir);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('state: the SQLite file (default) or an etcd cluster', () => {
  test('by default: SQLite at state.path, no etcd', () => {
    const config = parseConfig(base('state: { path: var/state.db }'), '/x/c.yaml', {}, '/srv/app');
    assert.deepEqual(config.state, { path: '/srv/app/var/state.db', relativeTo: '/srv/app', backend: 'sqlite', etcd: undefined });
  });

  test('etcd: endpoints as given, prefix, ttl and member defaulted', () => {
    const config = parseConfig(base('server: { port: 9911 }\nstate: { backend: etcd, etcd: { endpoints: ["http://127.0.0.1:2379", "http://10.0.0.2:2379"] } }'), '/x/c.yaml', {});
    assert.equal(config.state.backend, 'etcd');
    assert.deepEqual(config.state.etcd, {
      endpoints: ['http://127.0.0.1:2379', 'http://10.0.0.2:2379'],
      displayEndpoints: ['http://127.0.0.1:2379', 'http://10.0.0.2:2379'],
      prefix: '/dr-sidecar/',
      ttl: 10,
      member: `${os.hostname()}:9911`,
    });
  });

  test('etcd: endpoints from one ${VAR} of comma-separated URLs, a prefix without its final slash, a member name', () => {
    const config = parseConfig(
      base('state: { backend: etcd, etcd: { endpoints: "${ETCD}", prefix: /dr-sidecar/crawler, ttl: "${TTL}", member: web-1 } }'),
      '/x/c.yaml',
      { ETCD: 'http://a:2379, http://b:2379', TTL: '4' },
    );
    assert.deepEqual(config.state.etcd?.endpoints, ['http://a:2379', 'http://b:2379']);
    assert.equal(config.state.etcd?.prefix, '/dr-sidecar/crawler/');
    assert.equal(config.state.etcd?.ttl, 4);
    assert.equal(config.state.etcd?.member, 'web-1');
  });

  test('a password in an endpoint is masked where shown, and a long one collected for the safety net', () => {
    const config = parseConfig(base('state: { backend: etcd, etcd: { endpoints: ["http://root:s3cr%40t@127.0.0.1:2379", "http://root:a-long%40etcd-secret@127.0.0.2:2379"] } }'), '/x/c.yaml', {});
    assert.deepEqual(config.state.etcd?.displayEndpoints, ['http://root:***@127.0.0.1:2379', 'http://root:***@127.0.0.2:2379']);
    assert.ok(config.secrets.includes('a-long@etcd-secret'));
    assert.ok(!config.secrets.includes('s3cr@t'), 'a short secret is masked where formatted, never replaced in every text');
  });

  test('etcd without endpoints, bad URLs, a short ttl, an unknown backend: refused by path, passwords masked', () => {
    assert.deepEqual(problemsOf(() => parseConfig(base('state: { backend: etcd }'), '/x/c.yaml', {})), [
      'state.etcd.endpoints: is required when state.backend is "etcd" (a list of the etcd members\' client URLs, e.g. http://10.0.0.1:2379)',
    ]);
    assert.deepEqual(problemsOf(() => parseConfig(base('state: { backend: etcd, etcd: { endpoints: ["grpc://u:hunter2@h:2379", "http://h:2379/v3"] } }'), '/x/c.yaml', {})), [
      'state.etcd.endpoints.0: expected an http:// or https:// URL (got "grpc://u:***@h:2379")',
      'state.etcd.endpoints.1: expected a URL without a path (etcd serves its API at the root) (got "http://h:2379/v3")',
    ]);
    assert.deepEqual(problemsOf(() => parseConfig(base('state: { backend: etcd, etcd: { endpoints: [], ttl: 1 } }'), '/x/c.yaml', {})), [
      'state.etcd.endpoints: expected at least one URL',
      "state.etcd.ttl: expected a whole number of seconds >= 2 (etcd's shortest lease)",
    ]);
    assert.deepEqual(problemsOf(() => parseConfig(base('state: { backend: consul }'), '/x/c.yaml', {})), ['state.backend: expected one of "sqlite", "etcd"']);
  });
});

test('monitoring.integrity_check_interval: 300 s by default, 0 turns it off, a negative value is refused', () => {
  assert.equal(parseConfig(base(), 'x.yaml', {}).monitoring.integrity_check_interval, 300);
  assert.equal(parseConfig(base('  monitoring:\n    integrity_check_interval: 0'), 'x.yaml', {}).monitoring.integrity_check_interval, 0);
  assert.deepEqual(
    problemsOf(() => parseConfig(base('  monitoring:\n    integrity_check_interval: -1'), 'x.yaml', {})),
    ['disaster_recovery.monitoring.integrity_check_interval: expected a number >= 0'],
  );
});
