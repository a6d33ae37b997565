/**
 * One cluster state, whichever folder a command runs from (issue 11, item 1),
 * with the real CLI as subprocesses and real files: only start-monitoring
 * creates a missing state store, every other command refuses naming the path
 * and the working directory; status shows the store it read; a state file
 * removed or replaced under a running sidecar is written back, after which
 * `/primary` and the CLI agree; unusable stores are one readable line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/load.js';
import { DisasterRecoveryManager } from '../../src/manager.js';
import { StateStoreMissing } from '../../src/state/location.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import type { StatusReport } from '../../src/status.js';
import {
  createSandbox,
  eventually,
  freePort,
  httpGet,
  logLines,
  sqliteConfig,
  stackLines,
  type CliResult,
  type ConfigDoc,
  type MonitorProcess,
  type Sandbox,
} from '../support/cli.js';
import { imageIds, insertImage, seedImages } from '../support/sqlite-cluster.js';
import { silentLogger } from '../../src/log.js';

const TOKEN = 'state-store-token-0123456789';
const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  return r;
}

/** Exit `code`, one line on stderr matching every pattern, nothing on stdout, no stack. */
function refused(r: CliResult, code: number, ...patterns: RegExp[]): string {
  assert.equal(r.code, code, show(r));
  const line = r.stderr.trim();
  assert.equal(line.split('\n').length, 1, `one line on stderr:\n${r.stderr}`);
  for (const p of patterns) assert.match(line, p, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  assert.equal(r.stdout, '');
  return line;
}

const literal = (text: string) => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/**
 * The issue's setup: an application folder whose config names its SQLite files
 * by absolute URLs and keeps the default relative `state.path`.
 */
function appFolder(t: { after(fn: () => void): void }, port: number, change: (doc: ConfigDoc, app: Sandbox) => void = () => {}): { app: Sandbox; config: string } {
  const app = createSandbox(t);
  const doc = sqliteConfig(port);
  doc.server.auth_token = TOKEN;
  for (const name of ['primary', 'secondary1']) {
    seedImages(app.path(`data/${name}.db`), 20);
    doc.disaster_recovery.databases[name]!.url = `sqlite:///${app.path(`data/${name}.db`)}`;
  }
  delete doc.disaster_recovery.databases.secondary2;
  // Copies once an hour: what a copy does is not the point here, and must not blur it.
  doc.disaster_recovery.failover = { ...doc.disaster_recovery.failover, sync_interval: 3600 };
  doc.disaster_recovery.monitoring = { ...doc.disaster_recovery.monitoring, probe_timeout: 15 };
  change(doc, app);
  return { app, config: app.writeConfig(doc) };
}

async function startSidecar(t: { after(fn: () => Promise<void>): void }, app: Sandbox, port: number): Promise<MonitorProcess> {
  const sidecar = await app.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  t.after(() => sidecar.stop().then(() => undefined, () => undefined));
  return sidecar;
}

async function primaryOf(sidecar: MonitorProcess): Promise<{ name: string; epoch: number }> {
  return JSON.parse((await httpGet(`${sidecar.url}/primary`)).body) as { name: string; epoch: number };
}

async function statusJson(app: Sandbox): Promise<StatusReport> {
  return JSON.parse(ok(await app.run(['status', '--json', '--config', 'config.yaml'], { timeoutMs: 30_000 })).stdout) as StatusReport;
}

const sidecarLog = (sidecar: MonitorProcess) => logLines(sidecar.output().stdout).map((l) => String(l.msg ?? l.raw));

describe('one cluster state, whichever folder a command runs from', () => {
  test('a command from another folder refuses, naming the path and the working directory; the live primary keeps its rows', async (t) => {
    const port = await freePort();
    const { app, config } = appFolder(t, port);
    const storePath = app.path('data/dr-state.db');
    const sidecar = await startSidecar(t, app, port);
    assert.ok(
      sidecarLog(sidecar).some((m) => m.includes(`created the state store ${storePath}`)),
      `start-monitoring logs the absolute path of the store it created:\n${sidecar.output().stdout}`,
    );

    ok(await app.run(['failover', 'secondary1', '--config', 'config.yaml'], { timeoutMs: 30_000 }));
    // The application writes to the new primary.
    const writer = new Database(app.path('data/secondary1.db'));
    for (let id = 1001; id <= 1010; id++) insertImage(writer, id);
    writer.close();

    const other = createSandbox(t);
    const missing = other.path('data/dr-state.db');
    for (const args of [['status'], ['status', '--json'], ['failover', 'secondary1'], ['history'], ['disable-auto-failover'], ['backup']]) {
      const r = await other.run([...args, '--config', config], { timeoutMs: 30_000 });
      refused(r, 1, literal(`no state store at ${missing} `), literal(`working directory ${other.dir}`), /start-monitoring creates the store/);
    }
    assert.equal(fs.existsSync(other.path('data')), false, 'nothing was created in the other folder');

    const ids = imageIds(app.path('data/secondary1.db'));
    for (let id = 1001; id <= 1010; id++) assert.ok(ids.has(id), `row ${id} written to the live primary is still there`);
    assert.equal((await primaryOf(sidecar)).name, 'secondary1');
    const report = await statusJson(app);
    assert.equal(report.primary, 'secondary1');
    assert.equal(report.state_store.path, storePath);
    const history = JSON.parse(ok(await app.run(['history', '--json', '--config', 'config.yaml'])).stdout) as unknown[];
    assert.equal(history.length, 1, 'one failover recorded, none from the other folder');
  });

  test('status shows the state store it read (text and --json); test and rules need no store and create none', async (t) => {
    const { app } = appFolder(t, 9898);
    ok(await app.run(['test', '--config', 'config.yaml'], { timeoutMs: 30_000 }));
    ok(await app.run(['rules', '--config', 'config.yaml']));
    assert.equal(fs.existsSync(app.path('data/dr-state.db')), false, 'test and rules created no store');
    refused(await app.run(['status', '--config', 'config.yaml']), 1, /no state store at/);

    const storePath = app.createStateStore();
    const text = ok(await app.run(['status', '--config', 'config.yaml'], { timeoutMs: 30_000 })).stdout;
    assert.match(text, new RegExp(`^State store:\\s+${storePath.replace(/[.]/g, '\\.')}$`, 'm'), text);
    const json = await statusJson(app);
    assert.deepEqual(json.state_store, { path: storePath, problem: null });
  });

  test('the library refuses a missing store the same way', async (t) => {
    const { app, config } = appFolder(t, 9898);
    const loaded = loadConfig(config, {}, app.dir);
    await assert.rejects(DisasterRecoveryManager.open({ config: loaded, logger: silentLogger() }), (error: unknown) => {
      assert.ok(error instanceof StateStoreMissing, String(error));
      assert.match(error.message, literal(`no state store at ${app.path('data/dr-state.db')} `));
      return true;
    });
    assert.equal(fs.existsSync(app.path('data/dr-state.db')), false);
  });
});

describe('a state file removed or replaced under the running sidecar', () => {
  test('removed: the sidecar writes back what it knows; /primary and status agree', async (t) => {
    const port = await freePort();
    const { app } = appFolder(t, port);
    const sidecar = await startSidecar(t, app, port);
    ok(await app.run(['failover', 'secondary1', '--config', 'config.yaml'], { timeoutMs: 30_000 }));
    await eventually('the sidecar to see secondary1 as primary', 10_000, async () => (await primaryOf(sidecar)).name === 'secondary1');

    const storePath = app.path('data/dr-state.db');
    fs.unlinkSync(storePath);
    await eventually('the state file written back', 10_000, async () => fs.existsSync(storePath), () => sidecar.output().stdout);

    const report = await statusJson(app);
    const routed = await primaryOf(sidecar);
    assert.equal(report.primary, 'secondary1', 'the CLI reads the written-back state');
    assert.equal(routed.name, 'secondary1');
    assert.equal(report.epoch, routed.epoch);
    assert.equal(report.epoch, 1);
    const history = JSON.parse(ok(await app.run(['history', '--json', '--config', 'config.yaml'])).stdout) as unknown[];
    assert.equal(history.length, 1, 'the history came back too');
    assert.ok(sidecarLog(sidecar).some((m) => m.includes(`the state store ${storePath} was removed`)), sidecar.output().stdout);

    // And the sidecar works on the file at the path afterwards: a change made by the CLI reaches /primary.
    ok(await app.run(['failover', 'primary', '--config', 'config.yaml'], { timeoutMs: 30_000 }));
    await eventually('the sidecar to follow the CLI on the written-back store', 10_000, async () => (await primaryOf(sidecar)).name === 'primary');
  });

  test('replaced: the replacement is moved aside (kept), the state written back; /primary and status agree', async (t) => {
    const port = await freePort();
    const { app } = appFolder(t, port);
    const sidecar = await startSidecar(t, app, port);
    ok(await app.run(['failover', 'secondary1', '--config', 'config.yaml'], { timeoutMs: 30_000 }));
    await eventually('the sidecar to see secondary1 as primary', 10_000, async () => (await primaryOf(sidecar)).name === 'secondary1');

    // A fresh store (primary = the config's primary) renamed over the live one.
    const storePath = app.path('data/dr-state.db');
    const impostor = app.path('elsewhere/dr-state.db');
    new SqliteStateStore(impostor, { create: true }).closeNow();
    fs.renameSync(impostor, storePath);

    const asideOf = () => fs.readdirSync(app.path('data')).filter((f) => f.startsWith('dr-state.db.replaced-') && !/-(wal|shm)$/.test(f));
    await eventually('the replacement moved aside', 10_000, async () => asideOf().length === 1, () => sidecar.output().stdout);
    const report = await statusJson(app);
    const routed = await primaryOf(sidecar);
    assert.equal(report.primary, 'secondary1');
    assert.equal(routed.name, 'secondary1');
    assert.equal(report.epoch, routed.epoch);
    const kept = new Database(path.join(app.path('data'), asideOf()[0]!), { readonly: true });
    assert.ok(kept.prepare("SELECT name FROM sqlite_master WHERE name = 'meta'").get(), 'the replacement is kept intact');
    kept.close();
    assert.ok(sidecarLog(sidecar).some((m) => m.includes(`the state store ${storePath} was replaced`) && m.includes('moved aside')), sidecar.output().stdout);
  });

  test('cannot be written back: the sidecar stops acting and says so in the log and status, until it can', async (t) => {
    const port = await freePort();
    const { app } = appFolder(t, port, (doc) => (doc.state.path = 'state/dr-state.db'));
    const sidecar = await startSidecar(t, app, port);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const apiStatus = async () => JSON.parse((await httpGet(`${sidecar.url}/api/status`, auth)).body) as StatusReport;

    // The state folder removed and a plain file put in its place: nothing can be written there.
    fs.rmSync(app.path('state'), { recursive: true });
    fs.writeFileSync(app.path('state'), 'not a folder\n');
    await eventually('status to show the problem', 10_000, async () => (await apiStatus()).state_store.problem !== null, () => sidecar.output().stdout);
    assert.match((await apiStatus()).state_store.problem!, /could not be written back/);
    assert.ok(sidecarLog(sidecar).some((m) => /could not be written back.*no failover and no copies/.test(m)), sidecar.output().stdout);
    const refusedFailover = await fetch(`${sidecar.url}/api/failover`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'secondary1' }),
    });
    assert.equal(refusedFailover.status, 409, await refusedFailover.text());

    fs.unlinkSync(app.path('state'));
    await eventually('the state written back and the problem cleared', 10_000, async () => (await apiStatus()).state_store.problem === null, () => sidecar.output().stdout);
    assert.ok(fs.existsSync(app.path('state/dr-state.db')));
    assert.ok(sidecarLog(sidecar).some((m) => /acts again/.test(m)), sidecar.output().stdout);
  });
});

describe('an unusable state store: one line naming it and what to do', () => {
  test('corrupt: not a SQLite database', async (t) => {
    const { app } = appFolder(t, 9898);
    const storePath = app.path('data/dr-state.db');
    fs.writeFileSync(storePath, 'garbage, not a database '.repeat(200));
    for (const command of ['status', 'failover secondary1', 'start-monitoring']) {
      refused(await app.run([...command.split(' '), '--config', 'config.yaml'], { timeoutMs: 30_000 }), 1, literal(`state store ${storePath} is not a SQLite database or is damaged`), /move it aside/);
    }
  });

  test('its folder cannot be made: start-monitoring says so', async (t) => {
    const { app } = appFolder(t, 9898, (doc) => (doc.state.path = 'blocker/dr-state.db'));
    fs.writeFileSync(app.path('blocker'), 'a file where the folder should be\n');
    refused(
      await app.run(['start-monitoring', '--config', 'config.yaml'], { timeoutMs: 30_000 }),
      1,
      literal(`state store ${app.path('blocker/dr-state.db')} cannot be created: its folder ${app.path('blocker')} cannot be made, something on the way is not a folder (`),
      /set state\.path to a file in a folder that exists/,
    );
  });

  test('under /proc, or a directory: refused at load (exit 2), no spin', async (t) => {
    for (const [statePath, why] of [
      ['/proc/self/dr-state.db', /state\.path: \/proc\/self\/dr-state\.db is on \/proc, a kernel pseudo-filesystem/],
      ['/proc/self/status', /state\.path: \/proc\/self\/status is on \/proc, a kernel pseudo-filesystem/],
      ['data', /state\.path: .*\/data is a directory, not a regular file/],
    ] as const) {
      const { app } = appFolder(t, 9898, (doc) => (doc.state.path = statePath));
      for (const command of ['status', 'start-monitoring']) {
        const r = await app.run([command, '--config', 'config.yaml'], { timeoutMs: 15_000 });
        assert.equal(r.code, 2, show(r));
        assert.match(r.stderr, why, show(r));
        assert.deepEqual(stackLines(r.stderr), [], show(r));
      }
    }
  });
});
