/**
 * Rough edges a user hits, each through the real CLI (and the real HTTP API):
 * one readable line and the right exit code, `--version`, reasons that cannot
 * forge lines or send terminal escapes, one JSON key style, a refused
 * concurrent failover recorded with its target, an application's own
 * `server:` section.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { configProblems, createDemoSandbox, freePort, httpGet, stackLines, type CliResult } from '../support/cli.js';
import { REPO_ROOT } from '../support/cli.js';
import { sqliteCluster } from '../support/sqlite-cluster.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  return r;
}

/** Every key of a JSON answer, with its path; the keys under `tables` are table names (data), not keys of ours. */
function keysOf(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => keysOf(v, `${at}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [`${at}.${k}`, ...(k === 'tables' ? [] : keysOf(v, `${at}.${k}`))]);
}

function assertSnakeCase(what: string, value: unknown): void {
  const keys = keysOf(value);
  assert.ok(keys.length > 0, `${what}: no keys`);
  const other = keys.filter((k) => !/^[a-z][a-z0-9_]*$/.test(k.slice(k.lastIndexOf('.') + 1)));
  assert.deepEqual(other, [], `${what}: keys not in snake_case`);
}

test('--version prints the package version', async (t) => {
  const { sandbox } = createDemoSandbox(t, await freePort());
  const { version } = JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = ok(await sandbox.run([flag]));
    assert.equal(r.stdout, `${version}\n`);
  }
});

test('a URL with a bad percent escape is listed under its config path, exit 2, the password not quoted back', async (t) => {
  const { sandbox, doc } = createDemoSandbox(t, await freePort());
  doc.disaster_recovery.databases.primary!.url = 'postgresql://app:50%off!@127.0.0.1:5432/shop';
  doc.disaster_recovery.databases.secondary1!.url = 'sqlite:///data/100%.db';
  sandbox.writeConfig(doc);
  const r = await sandbox.run(['status', '--config', 'config.yaml']);
  assert.equal(r.code, 2, show(r));
  assert.deepEqual(stackLines(r.stderr), []);
  assert.doesNotMatch(r.stderr, /URI malformed/);
  assert.doesNotMatch(r.stderr, /50%off/, 'the password is not shown');
  assert.deepEqual(configProblems(r.stderr), [
    'disaster_recovery.databases.primary.url: the password holds a "%" that does not start a percent escape (%XX); write a literal "%" as %25',
    'disaster_recovery.databases.secondary1.url: the file path "data/100%.db" holds a "%" that does not start a percent escape (%XX); write a literal "%" as %25',
  ]);
});

test('an application\'s own server: section is refused with a pointer to the collision', async (t) => {
  const { sandbox, doc } = createDemoSandbox(t, await freePort());
  (doc.server as Record<string, unknown>).workers = 4;
  sandbox.writeConfig(doc);
  const r = await sandbox.run(['status', '--config', 'config.yaml']);
  assert.equal(r.code, 2, show(r));
  assert.deepEqual(configProblems(r.stderr), [
    'server: unknown key "workers" (server: is the sidecar\'s own section and holds only host, port, auth_token, status_page; if this is your ' +
      "application's server: section, give the sidecar a config file of its own with the disaster_recovery: block and its own server: and state:)",
  ]);
});

test('history: a reason cannot forge a line or send a terminal escape; --json keeps it exact', async (t) => {
  const cluster = sqliteCluster(t, { monitoring: { probe_timeout: 5 } });
  const reason = 'upgrade\n#99 2031-01-01T00:00:00.000Z  manual  x -> y  SUCCESS\x1b[2J\x1b]0;owned\x07\u202e';
  ok(await cluster.cli('failover', 'secondary1', '--reason', reason));
  const text = ok(await cluster.cli('history')).stdout;
  assert.equal(text.includes('\x1b'), false, 'no escape character reaches the terminal');
  assert.equal(text.includes('\x07') || text.includes('\u202e'), false);
  assert.deepEqual(
    text.split('\n').filter((l) => l.startsWith('#')).map((l) => l.slice(0, 3)),
    ['#1 '],
    `one entry, no forged one:\n${text}`,
  );
  assert.match(text, /^ {3}reason: upgrade\\n#99 2031.*SUCCESS\\u001b\[2J\\u001b\]0;owned\\u0007\\u202e$/m);
  const [record] = JSON.parse(ok(await cluster.cli('history', '--json')).stdout) as FailoverRecordJson[];
  assert.equal(record!.reason, reason, 'the data itself is kept as it was given');
});

test('a failover that the lease holder never takes is refused, and is in the history with its target', async (t) => {
  const cluster = sqliteCluster(t, { monitoring: { probe_timeout: 5 } });
  ok(await cluster.cli('history')); // the state store exists, as a running sidecar's would
  const store = new SqliteStateStore(cluster.load().state.path);
  t.after(() => store.close());
  assert.ok(await store.acquireLease('another-sidecar:1', 120_000));
  const r = await cluster.cli('failover', 'secondary1', '--reason', 'maintenance');
  assert.equal(r.code, 1, show(r));
  // The holder of the lease leads: the command hands it the request, and is told when nobody takes it.
  assert.match(r.stderr, /^error: no leader took the failover request within 15 s \(the lease is held by another-sidecar:1, which did not answer\); nothing was done/);
  const [record] = JSON.parse(ok(await cluster.cli('history', '--json')).stdout) as FailoverRecordJson[];
  assert.equal(record!.result, 'refused');
  assert.equal(record!.from, 'primary');
  assert.equal(record!.to, 'secondary1');
  assert.equal(record!.reason, 'maintenance');
  assert.match(ok(await cluster.cli('history')).stdout, /^#1 \S+ {2}manual {2}primary -> secondary1 {2}REFUSED$/m);
});

test('one JSON key style (snake_case) in every --json output and the API; the API checks its limit too', async (t) => {
  const cluster = sqliteCluster(t, { monitoring: { probe_timeout: 5 } });
  const port = await freePort();
  cluster.doc.server.port = port;
  cluster.sandbox.writeConfig(cluster.doc, cluster.configPath);
  const json = async (...args: string[]) => JSON.parse(ok(await cluster.cli(...args, '--json')).stdout) as unknown;

  assertSnakeCase('failover --json', await json('failover', 'secondary1', '--reason', 'planned'));
  assertSnakeCase('history --json', await json('history'));
  assertSnakeCase('test --json', await json('test'));
  assertSnakeCase('status --json', await json('status'));
  const backup = (await json('backup')) as { path: string };
  assertSnakeCase('backup --json', backup);
  assertSnakeCase('verify --json', await json('verify'));
  assertSnakeCase('restore --json', await json('restore', backup.path, '--yes'));

  const sidecar = await cluster.sandbox.startMonitoring({ port, args: ['--config', cluster.configPath] });
  t.after(async () => void (await sidecar.stop()));
  const auth = { authorization: `Bearer ${cluster.doc.server.auth_token}` };
  for (const route of ['/api/status', '/api/history', '/primary', '/primary/secondary1']) {
    const answer = await httpGet(`${sidecar.url}${route}`, auth);
    assertSnakeCase(route, JSON.parse(answer.body));
  }
  const history = JSON.parse((await httpGet(`${sidecar.url}/api/history?limit=1`, auth)).body) as FailoverRecordJson[];
  assert.deepEqual([history.length, history[0]!.started_at !== undefined, history[0]!.data_sync?.method], [1, true, 'final-copy']);
  for (const limit of ['99999999999999999999', '0', 'abc']) {
    const answer = await httpGet(`${sidecar.url}/api/history?limit=${limit}`, auth);
    assert.equal(answer.status, 400, answer.body);
    assert.deepEqual(JSON.parse(answer.body), { error: `limit: expected a whole number from 1 to 10000, got "${limit}"` });
  }
});
