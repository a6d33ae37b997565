import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';
import { DisasterRecoveryService } from '../../src/service.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { makeImagesDb, tempDir } from '../support/sqlite.js';
import { requireTool } from '../support/tools.js';
import { createStateStore } from '../support/state-store.js';

const TOKEN = 'tok-9f8e7d6c5b4a';
const PASSWORD = 'Sup3r-secret-pw';

describe('HTTP: /metrics, /healthz, /api/status', () => {
  const tmp = tempDir();
  let pgServer: PgServer;
  let service: DisasterRecoveryService;
  let server: RunningServer;
  let open: RunningServer;
  let noToken: DisasterRecoveryService;

  before(async () => {
    pgServer = await startPostgres({ passwordAuth: true });
    await pgServer.createUser('crawler', PASSWORD, true);
    makeImagesDb(path.join(tmp.dir, 'primary.db'), 3);
    const yaml = (token: string) => `
server: { auth_token: "${token}" }
state: { path: "${tmp.dir}/state-${token ? 'a' : 'b'}.db" }
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///${tmp.dir}/primary.db" }
    secondary1: { type: secondary, priority: 1, url: "${pgServer.url({ user: 'crawler', password: PASSWORD })}" }
    gone: { type: secondary, priority: 2, url: "sqlite:///${tmp.dir}/gone.db" }
    off: { type: secondary, priority: 3, url: "sqlite:///${tmp.dir}/off.db", enabled: false }
`;
    const withToken = parseConfig(yaml(TOKEN), 'x.yaml', {});
    const withoutToken = parseConfig(yaml(''), 'y.yaml', {});
    createStateStore(withToken);
    createStateStore(withoutToken);
    service = new DisasterRecoveryService(withToken, silentLogger());
    await service.monitor.probeAll();
    server = await listen(createApp(service, silentLogger()), '127.0.0.1', 0);
    noToken = new DisasterRecoveryService(withoutToken, silentLogger());
    open = await listen(createApp(noToken, silentLogger()), '127.0.0.1', 0);
  });
  after(async () => {
    await server?.close();
    await open?.close();
    await service?.stop();
    await noToken?.stop();
    await pgServer?.destroy();
    tmp.cleanup();
  });

  test('/healthz answers 200', async () => {
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
  });

  test('/metrics: every database\'s health, in the exposition format', async () => {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of [
      'dr_database_up{database="primary"} 1',
      'dr_database_up{database="secondary1"} 1',
      'dr_database_up{database="gone"} 0',
      'dr_database_is_primary{database="primary"} 1',
      'dr_database_is_primary{database="secondary1"} 0',
      'dr_database_in_recovery{database="secondary1"} 0',
      'dr_database_read_only{database="secondary1"} 0',
      'dr_database_errors_total{database="gone"} 1',
      'dr_database_consecutive_failures{database="gone"} 1',
      'dr_auto_failover_enabled 1',
      'dr_database_info{database="secondary1",engine="postgresql",type="secondary"} 1',
    ]) {
      assert.ok(text.includes(`${line}\n`), `missing: ${line}`);
    }
    assert.match(text, /^dr_database_connections\{database="secondary1"\} [1-9]\d*$/m);
    assert.match(text, /^dr_database_size_bytes\{database="secondary1"\} [1-9]\d*$/m);
    assert.match(text, /^dr_database_response_time_seconds\{database="primary"\} 0\.\d+/m);
    assert.match(text, /^process_resident_memory_bytes /m, 'default process metrics');
    assert.doesNotMatch(text, /database="off"/, 'a disabled database is not probed');
  });

  test('promtool check metrics finds nothing to report', async () => {
    const promtool = requireTool('promtool', 'apt-get install -y prometheus');
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const lint = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    assert.equal((lint.stdout + lint.stderr).trim(), '');
  });

  test('/api/status: 401 without or with a wrong token, 200 with it', async () => {
    const none = await fetch(`${server.url}/api/status`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="dr-sidecar"');
    const wrong = await fetch(`${server.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    const basic = await fetch(`${server.url}/api/status`, { headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
    const ok = await fetch(`${server.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { primary: string; databases: Array<{ name: string; status: string; url: string; error: string | null }> };
    assert.equal(body.primary, 'primary');
    assert.deepEqual(
      body.databases.map((d) => [d.name, d.status]),
      [['primary', 'up'], ['secondary1', 'up'], ['gone', 'down'], ['off', 'disabled']],
    );
    assert.match(body.databases.find((d) => d.name === 'gone')!.error!, /database file not found/);
    assert.equal(body.databases[1]!.url, `postgresql://crawler:***@127.0.0.1:${pgServer.port}/postgres`);
  });

  test('without a configured token /api is refused, not open', async () => {
    const res = await fetch(`${open.url}/api/status`);
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error: string }).error, /server\.auth_token/);
    const res2 = await fetch(`${open.url}/api/status`, { headers: { authorization: 'Bearer ' } });
    assert.equal(res2.status, 403);
  });

  test('no password or token in /metrics or /api/status', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const status = await (await fetch(`${server.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    for (const body of [metrics, status]) {
      assert.ok(!body.includes(PASSWORD), 'password leaked');
      assert.ok(!body.includes(TOKEN), 'token leaked');
    }
  });

  test('unknown routes are 404 JSON', async () => {
    const res = await fetch(`${server.url}/nope`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'not found' });
  });
});
