/**
 * The `disaster-recovery` command as a user meets it: the real bin as a subprocess,
 * real SQLite files, a real PostgreSQL server that wants a password, real HTTP.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import {
  configProblems,
  createDemoSandbox,
  createSandbox,
  eventually,
  freePort,
  httpGet,
  logLines,
  parseStatusTable,
  sqliteConfig,
  stackLines,
  type CliResult,
  type MonitorProcess,
  type Sandbox,
} from '../support/cli.js';
import { startPostgres, type PgServer } from '../support/postgres.js';

interface StatusJson {
  enabled: boolean;
  config: string;
  primary: string | null;
  auto_failover: { enabled: boolean };
  databases: Array<{ name: string; status: string; is_primary: boolean; url: string; error: string | null; engine: string }>;
}

/** Everything about a run, for assertion messages. */
const show = (r: CliResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function assertExit(r: CliResult, code: number): void {
  assert.equal(r.code, code, `expected exit ${code}, got:\n${show(r)}`);
}

function assertNoStack(r: { stdout: string; stderr: string }): void {
  assert.deepEqual(stackLines(r.stderr), [], `stack trace on stderr:\n${r.stderr}`);
  assert.deepEqual(stackLines(r.stdout), [], `stack trace on stdout:\n${r.stdout}`);
}

function parseJson<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (error) {
    assert.fail(`stdout is not JSON (${(error as Error).message}):\n${show(r)}`);
  }
}

const byName = <T extends { name: string }>(items: T[], name: string): T => {
  const found = items.find((d) => d.name === name);
  assert.ok(found, `no database "${name}" in ${JSON.stringify(items.map((d) => d.name))}`);
  return found;
};

/** The rows of the status table by database name ("primary *" → "primary"). */
function statusRows(stdout: string): Map<string, Record<string, string>> {
  return new Map(parseStatusTable(stdout).map((row) => [row.DATABASE!.replace(/ \*$/, ''), row]));
}

/** The line `test` printed for a database. */
function probeLine(stdout: string, name: string): string {
  const line = stdout.split('\n').find((l) => new RegExp(`^\\S+\\s+${name}\\s`).test(l));
  assert.ok(line, `no line for ${name} in:\n${stdout}`);
  return line;
}

/** Validates a status run's human output for the demo layout (primary + secondary1 up, secondary2 disabled). */
function assertDemoStatus(r: CliResult): void {
  assertExit(r, 0);
  assert.match(r.stdout, /^Current primary:\s+primary$/m, show(r));
  assert.match(r.stdout, /^Auto-failover:\s+enabled$/m, show(r));
  const rows = statusRows(r.stdout);
  assert.deepEqual([...rows.keys()], ['primary', 'secondary1', 'secondary2'], r.stdout);
  assert.equal(rows.get('primary')!.DATABASE, 'primary *', 'the current primary is starred');
  assert.equal(rows.get('primary')!.STATUS, 'up', r.stdout);
  assert.equal(rows.get('secondary1')!.STATUS, 'up', r.stdout);
  assert.equal(rows.get('secondary2')!.STATUS, 'disabled', r.stdout);
  assert.equal(rows.get('primary')!.URL, 'sqlite:///data/images_primary.db');
  assert.equal(r.stderr, '', 'nothing on stderr when all is well');
}

/** dr_database_up{database="NAME"} from a Prometheus exposition, or undefined. */
function upValue(metrics: string, name: string): string | undefined {
  return new RegExp(`^dr_database_up\\{database="${name}"\\} (\\S+)$`, 'm').exec(metrics)?.[1];
}

async function waitForUp(m: MonitorProcess, name: string, value: '0' | '1'): Promise<string> {
  let last = '';
  await eventually(
    `dr_database_up{database="${name}"} ${value}`,
    10_000,
    async () => {
      last = (await httpGet(`${m.url}/metrics`)).body;
      return upValue(last, name) === value;
    },
    () => `last /metrics dr_database_up lines:\n${last.split('\n').filter((l) => l.startsWith('dr_database_up')).join('\n')}\n${JSON.stringify(m.output())}`,
  );
  return last;
}

describe('disaster-recovery CLI', () => {
  describe('status', () => {
    test('names the current primary; primary and secondary1 up, secondary2 disabled (--config after the command)', async (t) => {
      const { sandbox } = createDemoSandbox(t, 9898);
      assertDemoStatus(await sandbox.run(['status', '--config', 'config.yaml']));
    });

    test('--config before the command works the same', async (t) => {
      const { sandbox, config } = createDemoSandbox(t, 9898);
      assertDemoStatus(await sandbox.run(['--config', config, 'status']));
      assertDemoStatus(await sandbox.run(['-c', 'config.yaml', 'status']));
    });

    test('status --json parses and holds primary, auto_failover.enabled, every database with its status', async (t) => {
      const { sandbox, config } = createDemoSandbox(t, 9898);
      const r = await sandbox.run(['status', '--json', '--config', 'config.yaml']);
      assertExit(r, 0);
      const s = parseJson<StatusJson>(r);
      assert.equal(s.primary, 'primary');
      assert.equal(s.auto_failover.enabled, true);
      assert.equal(s.enabled, true);
      assert.equal(s.config, config);
      assert.deepEqual(
        s.databases.map((d) => [d.name, d.status, d.is_primary]),
        [
          ['primary', 'up', true],
          ['secondary1', 'up', false],
          ['secondary2', 'disabled', false],
        ],
      );
    });

    test('DR_CONFIG is used when --config is absent, and --config wins over it', async (t) => {
      const sandbox = createSandbox(t);
      const doc = sqliteConfig(9898);
      doc.disaster_recovery.failover.enable_auto_failover = false; // tells this file apart
      const other = sandbox.writeConfig(doc, 'conf/other.yaml');
      sandbox.writeSqlite('data/images_primary.db');
      sandbox.writeSqlite('data/images_secondary1.db');
      sandbox.createStateStore('conf/other.yaml');

      const viaEnv = await sandbox.run(['status', '--json'], { env: { DR_CONFIG: 'conf/other.yaml' } });
      assertExit(viaEnv, 0);
      const s = parseJson<StatusJson>(viaEnv);
      assert.equal(s.config, other);
      assert.equal(s.auto_failover.enabled, false, 'auto_failover.enabled follows the config');
      assert.equal(byName(s.databases, 'secondary1').status, 'up');

      const human = await sandbox.run(['status'], { env: { DR_CONFIG: other } });
      assertExit(human, 0);
      assert.match(human.stdout, /^Auto-failover:\s+disabled$/m, show(human));

      const flagWins = await sandbox.run(['status', '--json', '--config', 'conf/other.yaml'], { env: { DR_CONFIG: 'missing.yaml' } });
      assertExit(flagWins, 0);
      assert.equal(parseJson<StatusJson>(flagWins).config, other);

      // neither: config/config.yaml of the working directory, which does not exist here
      const neither = await sandbox.run(['status']);
      assertExit(neither, 2);
      assert.match(neither.stderr, new RegExp(`${sandbox.path('config/config.yaml').replace(/[.]/g, '\\.')}: file not found`), show(neither));
    });
  });

  describe('test', () => {
    test('exit 0 when every enabled database answers; exit 1 naming the missing file when the secondary is gone', async (t) => {
      const { sandbox } = createDemoSandbox(t, 9898);
      const ok = await sandbox.run(['test', '--config', 'config.yaml']);
      assertExit(ok, 0);
      assert.match(probeLine(ok.stdout, 'primary'), /^ok\s+primary\s+sqlite\s/);
      assert.match(probeLine(ok.stdout, 'secondary1'), /^ok\s+secondary1\s+sqlite\s/);
      assert.doesNotMatch(ok.stdout, /secondary2/, 'a disabled database is not probed');
      assert.equal(ok.stderr, '');

      const file = sandbox.path('data/images_secondary1.db');
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });

      const bad = await sandbox.run(['test', '--config', 'config.yaml']);
      assertExit(bad, 1);
      assertNoStack(bad);
      // the product marks a down database "FAIL" and gives the reason on the same line
      const line = probeLine(bad.stdout, 'secondary1');
      assert.match(line, /^FAIL\s+secondary1\s+sqlite\s/, line);
      assert.ok(line.includes(`database file not found: ${file}`), line);
      assert.match(probeLine(bad.stdout, 'primary'), /^ok\s+primary\s/, 'the primary is still ok');

      // status shows the same: down, with the reason
      const status = await sandbox.run(['status', '--config', 'config.yaml']);
      assertExit(status, 0);
      const rows = statusRows(status.stdout);
      assert.equal(rows.get('secondary1')!.STATUS, 'down', status.stdout);
      assert.equal(rows.get('primary')!.STATUS, 'up', status.stdout);
      assert.match(status.stdout, new RegExp(`^secondary1: database file not found: ${file.replace(/[.]/g, '\\.')}$`, 'm'), status.stdout);
    });
  });

  describe('a wrong config: exit 2, one message naming the problem, no stack', { concurrency: true }, () => {
    /** Runs `status` on the demo sandbox with `change` applied to its config. */
    async function statusWith(
      t: { after(fn: () => void): void },
      change: (text: string, sandbox: Sandbox) => string,
      env: Record<string, string | undefined> = {},
    ): Promise<{ r: CliResult; config: string }> {
      const { sandbox, config } = createDemoSandbox(t, 9898, 1);
      sandbox.writeConfig(change(readFileSync(config, 'utf8'), sandbox));
      return { r: await sandbox.run(['status', '--config', config], { env }), config };
    }

    /** The common shape: exit 2, `error: invalid configuration in FILE:` and exactly one problem. */
    function assertOneProblem(r: CliResult, config: string): string {
      assertExit(r, 2);
      assertNoStack(r);
      assert.equal(r.stdout, '', 'nothing on stdout');
      assert.ok(r.stderr.startsWith(`error: invalid configuration in ${config}:\n`), show(r));
      const problems = configProblems(r.stderr);
      assert.equal(problems.length, 1, `one problem expected:\n${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 2, `header and one problem line only:\n${r.stderr}`);
      return problems[0]!;
    }

    test('missing file', async (t) => {
      const sandbox = createSandbox(t);
      const r = await sandbox.run(['status', '--config', 'nope/config.yaml']);
      const config = sandbox.path('nope/config.yaml');
      assert.equal(assertOneProblem(r, config), `cannot read ${config}: file not found`);
    });

    test('YAML syntax error: the message says where ("line N")', async (t) => {
      const { r, config } = await statusWith(t, (text) => text.replace('host: 127.0.0.1', 'host: "127.0.0.1'));
      const expectedLine = readFileSync(config, 'utf8').split('\n').indexOf('  host: "127.0.0.1') + 1;
      assert.ok(expectedLine > 0, 'the fixture has the unclosed quote');
      assert.match(assertOneProblem(r, config), new RegExp(`^YAML syntax error at line ${expectedLine}, column \\d+: Missing closing "quote`));
    });

    test(
      'YAML syntax error: a misindented line is one problem, not a cascade',
      async (t) => {
        const { r, config } = await statusWith(t, (text) => text.replace('\n  port: ', '\n port: '));
        const expectedLine = readFileSync(config, 'utf8').split('\n').indexOf(' port: 9898') + 1;
        assert.match(assertOneProblem(r, config), new RegExp(`^YAML syntax error at line ${expectedLine}, column \\d+: `));
      },
    );

    test('health_check_interval: "abc" → "expected a positive number"', async (t) => {
      const { r, config } = await statusWith(t, (text) => text.replace('health_check_interval: 30', 'health_check_interval: "abc"'));
      assert.equal(assertOneProblem(r, config), 'disaster_recovery.failover.health_check_interval: expected a positive number');
    });

    test('unknown operator "=>" in an alert rule', async (t) => {
      const { r, config } = await statusWith(t, (text) => text.replace(/operator: ('|")?>('|")?/, 'operator: "=>"'));
      assert.equal(
        assertOneProblem(r, config),
        'disaster_recovery.monitoring.alert_rules.response_time_warning.operator: expected one of ">", ">=", "<", "<=", "==", "!="',
      );
    });

    test('two databases with the same priority', async (t) => {
      const { r, config } = await statusWith(t, (text) => text.replace(/(secondary1:[\s\S]*?priority: )1/, '$10'));
      assert.equal(
        assertOneProblem(r, config),
        'disaster_recovery.databases.secondary1.priority: 0 is also the priority of disaster_recovery.databases.primary; priorities must be unique',
      );
    });

    test('no primary', async (t) => {
      const { r, config } = await statusWith(t, (text) => text.replace(/type: ('|")?primary('|")?/, 'type: secondary'));
      assert.equal(assertOneProblem(r, config), 'disaster_recovery.databases: no enabled database has type "primary"');
    });

    test('${DB_PASSWORD} unset in a URL names the variable', async (t) => {
      const { r, config } = await statusWith(
        t,
        (text) => text.replace('sqlite:///data/images_primary.db', 'postgresql://app:${DB_PASSWORD}@127.0.0.1:5432/images'),
        { DB_PASSWORD: undefined },
      );
      const problem = assertOneProblem(r, config);
      assert.match(problem, /^disaster_recovery\.databases\.primary\.url: environment variable DB_PASSWORD is not set\b/);
    });

    test('unknown command: exit 2, says so, no stack', async (t) => {
      const { sandbox } = createDemoSandbox(t, 9898, 1);
      const r = await sandbox.run(['frobnicate', '--config', 'config.yaml']);
      assertExit(r, 2);
      assertNoStack(r);
      assert.match(r.stderr, /^error: unknown command 'frobnicate'$/m, show(r));
    });
  });

  describe('start-monitoring', () => {
    test('serves /metrics and /healthz, guards /api/status with the bearer token, refuses a second instance, stops on SIGTERM', async (t) => {
      const port = await freePort();
      const { sandbox, doc } = createDemoSandbox(t, port);
      doc.server.auth_token = '${DR_AUTH_TOKEN}';
      sandbox.writeConfig(doc);
      const token = 'tok-e2e-0123456789';
      const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env: { DR_AUTH_TOKEN: token } });
      t.after(() => m.stop('SIGKILL').catch(() => undefined));

      const metrics = await waitForUp(m, 'primary', '1');
      await waitForUp(m, 'secondary1', '1');
      assert.equal(upValue(metrics, 'secondary2'), undefined, 'a disabled database has no dr_database_up');
      const metricsRes = await httpGet(`${m.url}/metrics`);
      assert.equal(metricsRes.status, 200);
      assert.match(metricsRes.headers.get('content-type') ?? '', /^text\/plain/);

      const health = await httpGet(`${m.url}/healthz`);
      assert.equal(health.status, 200);

      const none = await httpGet(`${m.url}/api/status`);
      assert.equal(none.status, 401, none.body);
      const wrong = await httpGet(`${m.url}/api/status`, { Authorization: 'Bearer not-the-token' });
      assert.equal(wrong.status, 401, wrong.body);
      const right = await httpGet(`${m.url}/api/status`, { Authorization: `Bearer ${token}` });
      assert.equal(right.status, 200, right.body);
      const status = JSON.parse(right.body) as StatusJson;
      assert.equal(status.primary, 'primary');
      assert.equal(byName(status.databases, 'primary').status, 'up');

      // a second instance on the same port: exit 1, says why, the first keeps serving
      const second = await sandbox.run(['start-monitoring', '--config', 'config.yaml'], { env: { DR_AUTH_TOKEN: token }, timeoutMs: 10_000 });
      assertExit(second, 1);
      assertNoStack(second);
      assert.match(second.stderr, new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`, 'm'), show(second));
      assert.equal((await httpGet(`${m.url}/healthz`)).status, 200, 'the first instance still serves');

      const stopped = await m.stop('SIGTERM');
      assert.equal(stopped.code, 0, show(stopped));
      assert.ok(stopped.elapsedMs < 5_000, `took ${stopped.elapsedMs} ms to stop`);
      assertNoStack(stopped);
      const msgs = logLines(stopped.stdout).map((l) => String(l.msg ?? l.raw));
      assert.ok(msgs.some((msg) => /sidecar started/.test(msg)), `no "sidecar started" log line:\n${stopped.stdout}`);
      assert.ok(msgs.some((msg) => /sidecar stopped/.test(msg)), `no "sidecar stopped" log line:\n${stopped.stdout}`);
      assert.ok(
        msgs.findIndex((msg) => /sidecar started/.test(msg)) < msgs.findIndex((msg) => /sidecar stopped/.test(msg)),
        'started before stopped',
      );
      await assert.rejects(httpGet(`${m.url}/healthz`), 'nothing listens after the stop');
    });

    test('without a configured token /api/status is refused (403); SIGINT stops it with exit 0', async (t) => {
      const port = await freePort();
      const { sandbox } = createDemoSandbox(t, port); // auth_token: "${DR_AUTH_TOKEN:-}", variable unset
      const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
      t.after(() => m.stop('SIGKILL').catch(() => undefined));

      const refused = await httpGet(`${m.url}/api/status`);
      assert.equal(refused.status, 403, refused.body);
      const withSomeToken = await httpGet(`${m.url}/api/status`, { Authorization: 'Bearer anything' });
      assert.equal(withSomeToken.status, 403, 'no token configured: refused whatever is sent');
      await waitForUp(m, 'primary', '1');

      const stopped = await m.stop('SIGINT');
      assert.equal(stopped.code, 0, show(stopped));
      assert.ok(stopped.elapsedMs < 5_000, `took ${stopped.elapsedMs} ms to stop`);
      const msgs = logLines(stopped.stdout).map((l) => String(l.msg ?? l.raw));
      assert.ok(msgs.some((msg) => /sidecar started/.test(msg)), stopped.stdout);
      assert.ok(msgs.some((msg) => /sidecar stopped/.test(msg)), stopped.stdout);
    });

    test('disaster_recovery.enabled: false → refuses to start, saying it is disabled', async (t) => {
      const port = await freePort();
      const { sandbox, doc } = createDemoSandbox(t, port, 1);
      doc.disaster_recovery.enabled = false;
      sandbox.writeConfig(doc);
      const r = await sandbox.run(['start-monitoring', '--config', 'config.yaml'], { timeoutMs: 10_000 });
      assert.notEqual(r.code, 0, show(r));
      assertNoStack(r);
      assert.match(r.stderr, /^\s+- disaster_recovery\.enabled: is false, so the sidecar does not start/m, show(r));
      await assert.rejects(httpGet(`http://127.0.0.1:${port}/healthz`), 'it never served');
    });

    test(
      'disaster_recovery.enabled: false → exit 2',
      async (t) => {
        const port = await freePort();
        const { sandbox, doc } = createDemoSandbox(t, port, 1);
        doc.disaster_recovery.enabled = false;
        sandbox.writeConfig(doc);
        assertExit(await sandbox.run(['start-monitoring', '--config', 'config.yaml'], { timeoutMs: 10_000 }), 2);
      },
    );
  });

  describe('secrets never shown (PostgreSQL with a password, API token)', () => {
    const USER = 'drsidecar';
    const PASSWORD = 's3cr3t-Pa55word';
    /** Written into the URL as is (not URL-encoded), as users do: "@" and ":" inside the password. */
    const WRONG = 'wr0ng-P@ss:w0rd';
    const TOKEN = 'tok-very-secret-123';
    let pgServer: PgServer;

    before(async () => {
      pgServer = await startPostgres({ passwordAuth: true });
      await pgServer.createUser(USER, PASSWORD, true);
      await pgServer.createDatabase('images');
    });
    after(async () => {
      await pgServer?.destroy();
    });

    /** The demo layout with the primary on PostgreSQL at `url`, debug logging, the token from the env. */
    function pgSandbox(t: { after(fn: () => void): void }, port: number, url: string): Sandbox {
      const { sandbox, doc } = createDemoSandbox(t, port, 5);
      doc.logging = { level: 'DEBUG' };
      doc.server.auth_token = '${DR_AUTH_TOKEN}';
      doc.disaster_recovery.databases.primary!.url = url;
      sandbox.writeConfig(doc);
      rmSync(sandbox.path('data/images_primary.db'));
      return sandbox;
    }

    /**
     * Asserts that no secret is in any of the texts: as written, URL-encoded, or a piece of it
     * between "@", ":" and "/" (what a mask that splits the URL in the wrong place leaves).
     */
    function assertNoSecrets(texts: Array<[where: string, text: string]>, secrets: string[]): void {
      const pieces = (s: string) => s.split(/[@:/]/).filter((p) => p.length >= 4);
      const forms = [...new Set(secrets.flatMap((s) => [s, encodeURIComponent(s), ...pieces(s)]))];
      const leaks = texts.flatMap(([where, text]) => forms.filter((s) => text.includes(s)).map((s) => `${where} shows "${s}"`));
      assert.deepEqual(leaks, [], `secrets leaked:\n${leaks.join('\n')}`);
    }

    test('status, status --json, test, start-monitoring and its HTTP answers show the masked URL, never the password or the token', async (t) => {
      const port = await freePort();
      const url = pgServer.url({ user: USER, password: PASSWORD, database: 'images' });
      const masked = `postgresql://${USER}:***@127.0.0.1:${pgServer.port}/images`;
      const sandbox = pgSandbox(t, port, url);
      const env = { DR_AUTH_TOKEN: TOKEN };
      const texts: Array<[string, string]> = [];
      const keep = (what: string, r: CliResult) => texts.push([`${what} stdout`, r.stdout], [`${what} stderr`, r.stderr]);

      const status = await sandbox.run(['status', '--config', 'config.yaml'], { env });
      keep('status', status);
      assertExit(status, 0);
      const rows = statusRows(status.stdout);
      assert.equal(rows.get('primary')!.STATUS, 'up', show(status));
      assert.equal(rows.get('primary')!.ENGINE, 'postgresql');
      assert.equal(rows.get('primary')!.URL, masked, show(status));

      const json = await sandbox.run(['status', '--json', '--config', 'config.yaml'], { env });
      keep('status --json', json);
      assertExit(json, 0);
      const s = parseJson<StatusJson>(json);
      assert.equal(byName(s.databases, 'primary').status, 'up');
      assert.equal(byName(s.databases, 'primary').url, masked);

      const probe = await sandbox.run(['test', '--config', 'config.yaml'], { env });
      keep('test', probe);
      assertExit(probe, 0);
      assert.match(probeLine(probe.stdout, 'primary'), /^ok\s+primary\s+postgresql\s/);
      assert.ok(probeLine(probe.stdout, 'primary').includes(`(${masked})`), probe.stdout);

      const probeJson = await sandbox.run(['test', '--json', '--config', 'config.yaml'], { env });
      keep('test --json', probeJson);
      assertExit(probeJson, 0);

      const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env });
      t.after(() => m.stop('SIGKILL').catch(() => undefined));
      const metrics = await waitForUp(m, 'primary', '1');
      texts.push(['/metrics', metrics]);
      const api = await httpGet(`${m.url}/api/status`, { Authorization: `Bearer ${TOKEN}` });
      texts.push(['/api/status', api.body]);
      assert.equal(api.status, 200, api.body);
      assert.equal(byName((JSON.parse(api.body) as StatusJson).databases, 'primary').url, masked);
      const wrongToken = await httpGet(`${m.url}/api/status`, { Authorization: `Bearer ${TOKEN}x` });
      texts.push(['/api/status (wrong token)', wrongToken.body], ['401 headers', JSON.stringify([...wrongToken.headers])]);
      assert.equal(wrongToken.status, 401);
      texts.push(['/healthz', (await httpGet(`${m.url}/healthz`)).body]);
      const stopped = await m.stop('SIGTERM');
      keep('start-monitoring', stopped);
      assert.equal(stopped.code, 0, show(stopped));

      assertNoSecrets(texts, [PASSWORD, TOKEN]);
      assert.ok(texts.some(([, text]) => text.includes(masked)), 'the masked URL is shown');
    });

    test('a wrong password: the database is down with the server\'s reason, and the wrong password is shown nowhere', async (t) => {
      const port = await freePort();
      const url = `postgresql://${USER}:${WRONG}@127.0.0.1:${pgServer.port}/images`;
      const masked = `postgresql://${USER}:***@127.0.0.1:${pgServer.port}/images`;
      const sandbox = pgSandbox(t, port, url);
      const env = { DR_AUTH_TOKEN: TOKEN };
      const texts: Array<[string, string]> = [];
      const keep = (what: string, r: CliResult) => texts.push([`${what} stdout`, r.stdout], [`${what} stderr`, r.stderr]);
      const reason = `password authentication failed for user "${USER}"`;

      const status = await sandbox.run(['status', '--config', 'config.yaml'], { env });
      keep('status', status);
      assertExit(status, 0);
      const rows = statusRows(status.stdout);
      assert.equal(rows.get('primary')!.STATUS, 'down', show(status));
      assert.equal(rows.get('primary')!.URL, masked);
      assert.equal(rows.get('secondary1')!.STATUS, 'up');
      assert.match(status.stdout, new RegExp(`^primary: ${reason}`, 'm'), show(status));

      const json = await sandbox.run(['status', '--json', '--config', 'config.yaml'], { env });
      keep('status --json', json);
      assertExit(json, 0);
      const primary = byName(parseJson<StatusJson>(json).databases, 'primary');
      assert.equal(primary.status, 'down');
      assert.ok(primary.error?.includes(reason), String(primary.error));

      const probe = await sandbox.run(['test', '--config', 'config.yaml'], { env });
      keep('test', probe);
      assertExit(probe, 1);
      assertNoStack(probe);
      const line = probeLine(probe.stdout, 'primary');
      assert.match(line, /^FAIL\s+primary\s+postgresql\s/, line);
      assert.ok(line.includes(reason), line);
      assert.match(probeLine(probe.stdout, 'secondary1'), /^ok\s/);

      const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env });
      t.after(() => m.stop('SIGKILL').catch(() => undefined));
      texts.push(['/metrics', await waitForUp(m, 'primary', '0')]);
      const api = await httpGet(`${m.url}/api/status`, { Authorization: `Bearer ${TOKEN}` });
      texts.push(['/api/status', api.body]);
      assert.ok(byName((JSON.parse(api.body) as StatusJson).databases, 'primary').error?.includes(reason), api.body);
      const stopped = await m.stop('SIGTERM');
      keep('start-monitoring', stopped);
      assert.equal(stopped.code, 0, show(stopped));
      assert.ok(
        logLines(stopped.stdout).some((l) => String(l.msg).includes(reason)),
        `the monitor logs why the primary is down:\n${stopped.stdout}`,
      );

      assertNoSecrets(texts, [WRONG, TOKEN]);
    });
  });
});
