/**
 * Secrets are masked where they are formatted, and nowhere else: the real CLI
 * against a real PostgreSQL that wants a password, a real sidecar's log file,
 * a webhook with credentials that cannot be reached.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createDemoSandbox, eventually, freePort, httpGet, logLines, parseStatusTable, type CliResult, type Sandbox } from '../support/cli.js';
import { startPostgres, type PgServer } from '../support/postgres.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** The demo sandbox with its primary on PostgreSQL at `url`; secondary1 stays a SQLite file. */
function pgSandbox(t: { after(fn: () => void): void }, url: string): Sandbox {
  const { sandbox, doc } = createDemoSandbox(t, 0, 5);
  doc.disaster_recovery.databases.primary!.url = url;
  sandbox.writeConfig(doc);
  rmSync(sandbox.path('data/images_primary.db'));
  return sandbox;
}

function primaryRow(r: CliResult): Record<string, string> {
  const row = parseStatusTable(r.stdout).find((d) => d.DATABASE!.replace(/ \*$/, '') === 'primary');
  assert.ok(row, show(r));
  return row;
}

describe('PostgreSQL passwords: the URL is masked, the server\'s messages are left whole', () => {
  let server: PgServer;
  before(async () => {
    server = await startPostgres({ passwordAuth: true });
    await server.createUser('crawler', 'e');
  });
  after(async () => {
    await server?.destroy();
  });

  test('the guide\'s user:password URL, refused by the server: "password authentication failed" is whole, the URL shows *** for the password only', async (t) => {
    const url = `postgresql://user:password@127.0.0.1:${server.port}/image_crawler_primary`;
    const sandbox = pgSandbox(t, url);
    const r = await sandbox.run(['status', '--config', 'config.yaml']);
    assert.equal(r.code, 0, show(r));
    assert.equal(primaryRow(r).URL, `postgresql://user:***@127.0.0.1:${server.port}/image_crawler_primary`, show(r));
    assert.match(r.stdout, /^primary: password authentication failed for user "user"/m, show(r));
  });

  test('a password "e": "database "nodb_here" does not exist" is printed as the server said it', async (t) => {
    const sandbox = pgSandbox(t, `postgresql://crawler:e@127.0.0.1:${server.port}/nodb_here`);
    const r = await sandbox.run(['status', '--config', 'config.yaml']);
    assert.equal(r.code, 0, show(r));
    assert.equal(primaryRow(r).URL, `postgresql://crawler:***@127.0.0.1:${server.port}/nodb_here`);
    assert.match(r.stdout, /^primary: database "nodb_here" does not exist/m, show(r));
    const probe = await sandbox.run(['test', '--config', 'config.yaml']);
    assert.equal(probe.code, 1, show(probe));
    assert.ok(probe.stdout.includes('database "nodb_here" does not exist'), show(probe));
  });
});

describe('server.auth_token', () => {
  test('"t" is refused at load, naming the key and the length wanted', async (t) => {
    const { sandbox } = createDemoSandbox(t, 0, 5);
    const r = await sandbox.run(['status', '--config', 'config.yaml'], { env: { DR_AUTH_TOKEN: 't' } });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /server\.auth_token: is 1 character long; use at least 16/, show(r));
  });

  test('a 16+ character token never reaches the log, and the log\'s own keys stay intact', async (t) => {
    const token = 'time-level-msg-0123';
    const port = await freePort();
    const { sandbox, doc } = createDemoSandbox(t, port, 5);
    doc.logging = { level: 'DEBUG', file: 'logs/dr.log' };
    doc.server.auth_token = '${DR_AUTH_TOKEN}';
    sandbox.writeConfig(doc);
    const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env: { DR_AUTH_TOKEN: token } });
    t.after(() => m.stop('SIGKILL').catch(() => undefined));
    assert.equal((await httpGet(`${m.url}/api/status`, { Authorization: `Bearer ${token}` })).status, 200);
    assert.equal((await httpGet(`${m.url}/api/status`, { Authorization: `Bearer ${token}x` })).status, 401);
    const stopped = await m.stop('SIGTERM');
    const log = readFileSync(sandbox.path('logs/dr.log'), 'utf8');
    for (const [where, text] of [['log file', log], ['stdout', stopped.stdout], ['stderr', stopped.stderr]] as const) {
      assert.ok(!text.includes(token), `${where} shows the token`);
    }
    const lines = logLines(log);
    assert.ok(lines.length > 0);
    for (const line of lines) {
      assert.deepEqual([typeof line.time, typeof line.level, typeof line.msg, line.name], ['string', 'number', 'string', 'disaster-recovery'], JSON.stringify(line));
    }
  });
});

test('a webhook URL with credentials to a closed port: the failure is logged with the URL masked, never the credentials', async (t) => {
  const port = await freePort();
  const closed = await freePort();
  const hook = `http://hookuser:hooks3cret@127.0.0.1:${closed}/hook?token=hooktoken42`;
  const token = 'webhook-creds-token-01';
  const { sandbox, doc } = createDemoSandbox(t, port, 5);
  doc.logging = { level: 'INFO', file: 'logs/dr.log' };
  doc.server.auth_token = token;
  doc.disaster_recovery.failover.notification_enabled = true;
  (doc.disaster_recovery as Record<string, unknown>).notifications = { webhooks: [hook], timeout: 2 };
  sandbox.writeConfig(doc);
  const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  t.after(() => m.stop('SIGKILL').catch(() => undefined));

  const res = await fetch(`${m.url}/api/failover`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: 'secondary1', reason: 'webhook credentials test' }),
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(res.status, 200, await res.text());
  const failed = () => logLines(readFileSync(sandbox.path('logs/dr.log'), 'utf8')).find((l) => /notification failed/.test(String(l.msg)));
  await eventually('the notification to fail', 30_000, async () => failed() !== undefined, () => readFileSync(sandbox.path('logs/dr.log'), 'utf8'));
  const stopped = await m.stop('SIGTERM');

  const line = failed()!;
  assert.equal(line.webhook, `http://hookuser:***@127.0.0.1:${closed}/hook?token=***`, JSON.stringify(line));
  assert.match(String(line.error), /ECONNREFUSED/, JSON.stringify(line));
  const log = readFileSync(sandbox.path('logs/dr.log'), 'utf8');
  for (const [where, text] of [['log file', log], ['stdout', stopped.stdout], ['stderr', stopped.stderr]] as const) {
    for (const secret of ['hooks3cret', 'hooktoken42']) assert.ok(!text.includes(secret), `${where} shows ${secret}:\n${text}`);
  }
});
