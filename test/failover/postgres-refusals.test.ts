/**
 * Failover requests that must be refused, through the real CLI and over HTTP,
 * against real PostgreSQL servers: unknown target, disabled target, target that
 * is down, target that is already the primary. Each is a clear refusal (exit 2
 * for a wrong request, 1 for a conflict with the world) and nothing changes.
 * Then two `failover` commands at once: exactly one wins.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { DisasterRecoveryService } from '../../src/service.js';
import type { FailoverRecord } from '../../src/state/store.js';
import { runCli, type CliResult } from '../support/cli.js';
import {
  APP_DB,
  inRecovery,
  memoryLogger,
  readOnlyDefault,
  startPgCluster,
  tempFolder,
  TOKEN,
  tryInsert,
  waitFor,
  writeFailoverConfig,
  type PgCluster,
} from '../support/failover.js';
import { startStandby, type PgServer } from '../support/postgres.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

describe('PostgreSQL failover refusals, and two failovers at once', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let cluster: PgCluster;
  let primary: PgServer;
  let standby1: PgServer;
  let standby2: PgServer;
  let standby3: PgServer | undefined;
  let configFile: string;
  let sidecar: DisasterRecoveryService;
  let http: RunningServer;
  let nextId = 1;
  const cli = (args: string[]) => runCli(['--config', configFile, ...args], { cwd: tmp.dir, timeoutMs: 60_000 });
  const post = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
    fetch(`${http.url}/api/failover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  before(async () => {
    cluster = await startPgCluster({ standbys: 2 });
    [primary, standby1, standby2] = cluster.all() as [PgServer, PgServer, PgServer];
    standby3 = await startStandby(primary, { settings: { cluster_name: 'standby3' } });
    await standby3.stop('fast');
    const written = writeFailoverConfig({
      dir: tmp.dir,
      databases: [
        { name: 'primary', type: 'primary', priority: 0, url: primary.url({ database: APP_DB }) },
        { name: 'standby1', type: 'secondary', priority: 1, url: standby1.url({ database: APP_DB }) },
        { name: 'standby2', type: 'secondary', priority: 2, url: standby2.url({ database: APP_DB }), enabled: false },
        { name: 'standby3', type: 'secondary', priority: 3, url: standby3.url({ database: APP_DB }) },
      ],
    });
    configFile = written.file;
    sidecar = new DisasterRecoveryService(written.config, sidecarLog.log);
    http = await listen(createApp(sidecar, sidecarLog.log), '127.0.0.1', 0);
    await sidecar.start();
    await waitFor('primary and standby1 up, standby3 down', 10_000, () =>
      ['primary', 'standby1'].every((n) => sidecar.monitor.health(n)?.status === 'up') && sidecar.monitor.health('standby3')?.status === 'down',
    );
  });

  after(async () => {
    await http?.close();
    await sidecar?.stop();
    await standby3?.destroy();
    await cluster?.destroy();
    tmp.cleanup();
  });

  /** Nothing changed: same primary and epoch, no history, nobody demoted or fenced, no standby promoted. */
  async function assertNothingChanged(): Promise<void> {
    const state = await sidecar.refreshState();
    assert.equal(sidecar.currentPrimary(), 'primary');
    assert.equal(state.epoch, 0);
    assert.deepEqual(state.demoted, []);
    assert.deepEqual(await sidecar.history(10), []);
    assert.equal(await inRecovery(standby1), true);
    assert.equal(await inRecovery(standby2), true);
    assert.equal(await readOnlyDefault(primary), false, 'the primary is not left fenced');
    assert.equal(await tryInsert(primary, nextId++), 'ok', 'the primary still takes writes');
  }

  const refusals: Array<{ title: string; target: string; exit: number; message: RegExp }> = [
    { title: 'an unknown target', target: 'nosuch', exit: 2, message: /^error: unknown database "nosuch" \(configured: primary, standby1, standby2, standby3\)$/m },
    { title: 'a disabled target', target: 'standby2', exit: 2, message: /^error: database "standby2" is disabled in the config$/m },
    { title: 'a target that is down (stopped server)', target: 'standby3', exit: 1, message: /^error: database "standby3" is down \(connection refused\); nothing changed$/m },
    { title: 'the current primary', target: 'primary', exit: 2, message: /^error: database "primary" is already the primary$/m },
  ];
  for (const r of refusals) {
    test(`CLI: failover to ${r.title} is refused (exit ${r.exit}) and nothing changes`, async () => {
      const run = await cli(['failover', r.target, '--reason', 'test']);
      assert.equal(run.code, r.exit, show(run));
      assert.match(run.stderr, r.message);
      assert.equal(run.stdout, '');
      assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
      await assertNothingChanged();
    });
  }

  test('HTTP: POST /api/failover refuses a missing token (401), a missing target (400), unknown (400), down (409); nothing changes', async () => {
    assert.equal((await post({ target: 'standby1' }, {})).status, 401);
    assert.equal((await post({ target: 'standby1' }, { authorization: 'Bearer wrong' })).status, 401);

    let res = await post({});
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /body\.target: the database to fail over to is required/);
    res = await post({ reason: 'no target' });
    assert.equal(res.status, 400);
    res = await post('not json');
    assert.equal(res.status, 400);
    res = await post({ target: 42 });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /body\.target: expected a non-empty string/);
    res = await post({ target: 'nosuch' });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /unknown database "nosuch"/);
    res = await post({ target: 'standby3' });
    assert.equal(res.status, 409);
    assert.match(((await res.json()) as { error: string }).error, /database "standby3" is down/);
    res = await post({ target: 'primary' });
    assert.equal(res.status, 400);
    await assertNothingChanged();
  });

  test('two `failover standby1` commands at once: exactly one switches, the other is refused with a clear message', async () => {
    const [a, b] = await Promise.all([cli(['failover', 'standby1', '--reason', 'first']), cli(['failover', 'standby1', '--reason', 'second'])]);
    const runs = [a!, b!];
    const won = runs.filter((r) => r.code === 0);
    const lost = runs.filter((r) => r.code !== 0);
    assert.equal(won.length, 1, `one winner:\n${runs.map(show).join('\n')}`);
    assert.equal(lost.length, 1);
    assert.match(won[0]!.stdout, /primary -> standby1 +SUCCESS +\(epoch 1\)/);
    assert.match(
      lost[0]!.stderr,
      /^error: (another failover is in progress \(.+\); nothing changed|database "standby1" is already the primary|.*another process switched the primary first.*|the primary changed since this was asked \(epoch 0 -> 1, primary standby1\); nothing changed)$/m,
      show(lost[0]!),
    );
    assert.equal(lost[0]!.code, /already the primary/.test(lost[0]!.stderr) ? 2 : 1);

    const state = await sidecar.refreshState();
    assert.equal(state.epoch, 1);
    assert.equal(sidecar.currentPrimary(), 'standby1');
    const history = await sidecar.history(10);
    const successes = history.filter((h: FailoverRecord) => h.result === 'success');
    assert.equal(successes.length, 1, JSON.stringify(history, null, 2));
    // The loser, when it lost the race for the lease, is in the history as refused; nothing else is.
    assert.ok(history.every((h) => h.result === 'success' || (h.result === 'refused' && /another failover is in progress|the primary changed since this was asked/.test(h.error ?? ''))));
    assert.equal(await inRecovery(standby1), false);
    assert.equal(await tryInsert(primary, nextId++), '25006', 'the former primary is fenced');
    console.log(`[failover-figures] concurrent failover commands: loser said: ${lost[0]!.stderr.trim()}`);
  });
});
