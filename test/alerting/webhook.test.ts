/**
 * POST /alertmanager/webhook over real HTTP (createApp on a real service, SQLite
 * files, the SQLite state store): auth, refusals, once-per-alert actions under
 * re-delivery and concurrency, resolved alerts, notifications, and the one
 * case that is a 5xx (the alert could not be recorded).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AlertDecision } from '../../src/alerting/actions.js';
import { parseConfig } from '../../src/config/load.js';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { DisasterRecoveryService } from '../../src/service.js';
import { memoryLogger } from '../support/failover.js';
import { countImages, insertImages, makeImagesDb, tempDir } from '../support/sqlite.js';
import { createStateStore } from '../support/state-store.js';

const TOKEN = 'webhook-token-7c1d2e';
const BEARER = { authorization: `Bearer ${TOKEN}` };

interface Receipt {
  received: number;
  duplicates: number;
  decisions: AlertDecision[];
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

let sequence = 0;

/** One alert as Alertmanager sends it; a fresh fingerprint unless given. */
function alert(labels: Record<string, string>, opts: { status?: 'firing' | 'resolved'; fingerprint?: string; startsAt?: string } = {}) {
  return {
    status: opts.status ?? 'firing',
    labels: { alertname: 'DrTest', severity: 'warning', ...labels },
    annotations: { summary: 'something happened' },
    startsAt: opts.startsAt ?? '2024-05-01T10:00:00.000Z',
    endsAt: opts.status === 'resolved' ? '2024-05-01T10:05:00.000Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://127.0.0.1:9090/graph',
    fingerprint: opts.fingerprint ?? `fp${(++sequence).toString(16).padStart(12, '0')}`,
  };
}

function payload(alerts: Array<ReturnType<typeof alert>>) {
  return {
    version: '4',
    groupKey: '{}:{alertname="DrTest"}',
    truncatedAlerts: 0,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: 'dr-sidecar',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts,
  };
}

async function post(url: string, body: unknown, headers: Record<string, string> = BEARER, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(`${url}/alertmanager/webhook`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

/** Value of a counter series in a /metrics body (0 when absent), labels matched exactly. */
async function counter(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => (v.startsWith('~') ? new RegExp(`^(${v.slice(1)})$`).test(got[k] ?? '') : got[k] === v))) sum += Number(m[3]);
  }
  return sum;
}

/** A tiny notification sink: every POST body it gets. */
async function notificationSink(): Promise<{ url: string; received: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const received: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('POST /alertmanager/webhook', () => {
  const tmp = tempDir('dr-webhook-');
  const services: DisasterRecoveryService[] = [];
  const servers: RunningServer[] = [];
  let sink: Awaited<ReturnType<typeof notificationSink>>;
  let main: { service: DisasterRecoveryService; url: string };
  let open: { service: DisasterRecoveryService; url: string };

  /** A service on its own SQLite files and state store in the temp dir, served over HTTP. */
  async function serve(name: string, opts: { token?: string; extra?: string; failover?: string; log?: Logger } = {}): Promise<{ service: DisasterRecoveryService; url: string }> {
    const dir = path.join(tmp.dir, name);
    makeImagesDb(path.join(dir, 'primary.db'), 3);
    makeImagesDb(path.join(dir, 'secondary1.db'), 3);
    const yaml = `
server: { auth_token: "${opts.token ?? ''}" }
state: { path: "${dir}/state.db" }
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///${dir}/primary.db" }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///${dir}/secondary1.db" }
  failover: { enable_auto_failover: true, retry_delay: 0, max_retry_attempts: 1${opts.failover ? `, ${opts.failover}` : ''} }
  backup: { backup_dir: "${dir}/backups", enable_auto_backup: false }
  ${opts.extra ?? ''}
`;
    const config = parseConfig(yaml, path.join(dir, 'config.yaml'), {});
    createStateStore(config);
    const service = new DisasterRecoveryService(config, opts.log ?? silentLogger());
    services.push(service);
    await service.refreshState();
    const server = await listen(createApp(service, silentLogger()), '127.0.0.1', 0);
    servers.push(server);
    return { service, url: server.url };
  }

  before(async () => {
    sink = await notificationSink();
    main = await serve('main', { token: TOKEN, extra: `notifications: { webhooks: ["${sink.url}"], timeout: 2 }` });
    open = await serve('open');
  });
  after(async () => {
    for (const s of servers) await s.close();
    for (const s of services) await s.stop().catch(() => undefined);
    await sink?.close();
    tmp.cleanup();
  });

  describe('auth', () => {
    const body = () => payload([alert({ dr_action: 'none', database: 'primary' })]);

    test('no Authorization header: 401, nothing recorded', async () => {
      const before = (await main.service.store.alerts(1000)).length;
      const r = await post(main.url, body(), {});
      assert.equal(r.status, 401);
      assert.match(String(r.body.error), /missing Authorization/);
      assert.equal((await main.service.store.alerts(1000)).length, before);
    });

    test('a wrong token: 401, Bearer or Basic', async () => {
      assert.equal((await post(main.url, body(), { authorization: `Bearer ${TOKEN}x` })).status, 401);
      assert.equal((await post(main.url, body(), { authorization: `Bearer ${TOKEN.slice(0, -1)}` })).status, 401);
      const basic = Buffer.from(`alertmanager:nope`).toString('base64');
      assert.equal((await post(main.url, body(), { authorization: `Basic ${basic}` })).status, 401);
      assert.equal((await post(main.url, body(), { authorization: TOKEN })).status, 401, 'the bare token is no scheme');
    });

    test('Bearer with the token: 200', async () => {
      const r = await post(main.url, body());
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((r.body as unknown as Receipt).received, 1);
    });

    test('Basic auth (Alertmanager basic_auth) with the token as password: 200', async () => {
      const basic = Buffer.from(`alertmanager:${TOKEN}`).toString('base64');
      const r = await post(main.url, body(), { authorization: `Basic ${basic}` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });

    test('no token configured: 403, refused rather than open', async () => {
      const r = await post(open.url, body(), BEARER);
      assert.equal(r.status, 403);
      assert.match(String(r.body.error), /server\.auth_token/);
      assert.equal((await post(open.url, body(), {})).status, 403);
      assert.deepEqual(await open.service.store.alerts(10), []);
    });
  });

  describe('refusals: 4xx with the reason, nothing recorded, no action', () => {
    test('malformed JSON: 400', async () => {
      const before = (await main.service.store.alerts(1000)).length;
      const r = await post(main.url, '{"version": "4", "alerts": [');
      assert.equal(r.status, 400);
      assert.ok(typeof r.body.error === 'string' && r.body.error.length > 0);
      assert.equal((await main.service.store.alerts(1000)).length, before);
    });

    test('not JSON at all (text/plain): 400', async () => {
      const r = await post(main.url, 'hello', BEARER, 'text/plain');
      assert.equal(r.status, 400);
      assert.match(String(r.body.error), /^not an Alertmanager webhook payload: body: /);
    });

    test('a payload of the wrong version: 400 saying so', async () => {
      const r = await post(main.url, { ...payload([alert({ dr_action: 'backup' })]), version: '3' });
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'not an Alertmanager webhook payload: version: expected version "4" (Alertmanager webhook payload)');
    });

    test('an alert without fingerprint: 400 naming the field', async () => {
      const a: Partial<ReturnType<typeof alert>> = alert({ dr_action: 'backup' });
      delete a.fingerprint;
      const r = await post(main.url, payload([a as ReturnType<typeof alert>]));
      assert.equal(r.status, 400);
      assert.match(String(r.body.error), /alerts\.0\.fingerprint/);
    });

    test('a 10 MB body: 413, and the server goes on serving', async () => {
      const before = await counter(main.url, 'dr_alert_notifications_total', {});
      const big = payload([alert({ dr_action: 'backup', database: 'primary', padding: 'x'.repeat(10 * 1024 * 1024) })]);
      const r = await post(main.url, big);
      assert.equal(r.status, 413);
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', {}), before, 'nothing counted');
      assert.equal((await post(main.url, payload([alert({ dr_action: 'none' })]))).status, 200);
    });
  });

  describe('decisions', () => {
    test('an alert for an unknown database: 200, recorded and ignored, no action', async () => {
      const a = alert({ dr_action: 'failover', database: 'does_not_exist', alertname: 'DrPrimaryDown' });
      const r = await post(main.url, payload([a]));
      assert.equal(r.status, 200);
      const receipt = r.body as unknown as Receipt;
      assert.equal(receipt.decisions[0]!.outcome, 'ignored');
      assert.match(receipt.decisions[0]!.why, /unknown database "does_not_exist"/);
      await main.service.alerts.drain();
      const [record] = (await main.service.store.alerts(1000)).filter((x) => x.key.startsWith(a.fingerprint));
      assert.equal(record?.outcome, 'ignored');
      assert.equal(record?.result, null, 'no action ran');
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'failover', result: 'ignored' }), 1);
      assert.deepEqual(await main.service.history(10), [], 'no failover');
    });

    test('an unknown dr_action: 200, ignored', async () => {
      const r = await post(main.url, payload([alert({ dr_action: 'reboot', database: 'primary' })]));
      assert.equal(r.status, 200);
      assert.equal((r.body as unknown as Receipt).decisions[0]!.outcome, 'ignored');
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'unknown', result: 'ignored' }), 1);
    });

    test('the same firing backup alert delivered 20 times: one backup, 19 duplicates', async () => {
      const a = alert({ dr_action: 'backup', database: 'primary', alertname: 'DrBackupTooOld' });
      const duplicates: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await post(main.url, payload([a]));
        assert.equal(r.status, 200, JSON.stringify(r.body));
        duplicates.push((r.body as unknown as Receipt).duplicates);
      }
      assert.deepEqual(duplicates, [0, ...Array(19).fill(1)]);
      await main.service.alerts.drain();
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: '~executed|failed' }), 1);
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: 'executed' }), 1);
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: 'duplicate' }), 19);
      const backups = main.service.backups.list('primary');
      assert.equal(backups.length, 1, 'one backup in the catalogue');
      assert.equal(backups[0]!.manifest?.trigger, 'alert');
      const records = (await main.service.store.alerts(1000)).filter((x) => x.key.startsWith(a.fingerprint));
      assert.equal(records.length, 1);
      assert.match(records[0]!.result ?? '', /^backup \S+ of primary \(alert DrBackupTooOld for primary\)$/, 'the action\'s result is recorded');
    });

    test('20 concurrent deliveries of one firing alert: one backup attempt', async () => {
      const before = await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: '~executed|failed' });
      const beforeDup = await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: 'duplicate' });
      const a = alert({ dr_action: 'backup', database: 'secondary1', alertname: 'DrBackupTooOld' });
      const answers = await Promise.all(Array.from({ length: 20 }, () => post(main.url, payload([a]))));
      assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200));
      assert.equal(answers.filter((r) => (r.body as unknown as Receipt).duplicates === 0).length, 1, 'exactly one delivery was fresh');
      await main.service.alerts.drain();
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: '~executed|failed' }), before + 1);
      assert.equal(main.service.backups.list('secondary1').length, 1, 'one backup of secondary1');
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: 'duplicate' }), beforeDup + 19);
    });

    test('resolved alerts are recorded, not acted on; each (fingerprint, startsAt) once', async () => {
      const before = await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: '~executed|failed' });
      const fp = 'resolved0000001';
      const resolved = alert({ dr_action: 'backup', database: 'primary' }, { status: 'resolved', fingerprint: fp });
      const r1 = await post(main.url, payload([resolved]));
      const r2 = await post(main.url, payload([resolved]));
      assert.equal((r1.body as unknown as Receipt).decisions[0]!.outcome, 'resolved');
      assert.equal((r2.body as unknown as Receipt).duplicates, 1);
      await main.service.alerts.drain();
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: 'resolved' }), 1);
      assert.equal(await counter(main.url, 'dr_alert_notifications_total', { action: 'backup', result: '~executed|failed' }), before, 'no backup');
    });

    test('one delivery with several alerts: each decided on its own', async () => {
      const r = await post(main.url, payload([
        alert({ dr_action: 'none', database: 'primary' }),
        alert({ dr_action: 'failover', database: 'secondary1' }),
        alert({ dr_action: 'none', database: 'primary' }, { status: 'resolved' }),
      ]));
      assert.equal(r.status, 200);
      assert.deepEqual((r.body as unknown as Receipt).decisions.map((d) => d.outcome), ['recorded', 'suppressed', 'resolved']);
      assert.match((r.body as unknown as Receipt).decisions[1]!.why, /secondary1 is not the current primary \(primary\)/);
    });

    test('every alert received is notified once (recorded ones too), duplicates are not', async () => {
      const a = alert({ dr_action: 'none', database: 'secondary1', alertname: 'DrConnectionCountHigh' });
      for (let i = 0; i < 3; i++) assert.equal((await post(main.url, payload([a]))).status, 200);
      await main.service.alerts.drain();
      await main.service.notifier.drain();
      const mine = sink.received.filter((n) => n.event === 'alert_action' && n.alertname === 'DrConnectionCountHigh' && n.startsAt === a.startsAt && (n.labels as Record<string, string>).database === 'secondary1');
      assert.equal(mine.length, 1, JSON.stringify(sink.received.map((n) => n.summary)));
      assert.equal(mine[0]!.outcome, 'recorded');
      assert.equal(mine[0]!.action, 'none');
      assert.match(String(mine[0]!.summary), /^alert DrConnectionCountHigh \(firing\) for secondary1: none recorded, the rule asks for no action$/);
      // Executed actions are notified with their result.
      const backups = sink.received.filter((n) => n.event === 'alert_action' && n.action === 'backup' && n.status === 'firing');
      assert.equal(backups.length, 2, 'one per backup alert above, not one per delivery');
      for (const b of backups) assert.equal(b.outcome, 'executed', String(b.summary));
    });
  });

  describe('failover by alert', () => {
    test('the primary lost, its failover alert delivered 20 times at once: one failover', async () => {
      const c = await serve('failover', { token: TOKEN });
      const dir = path.dirname(c.service.config.state.path);
      for (const suffix of ['', '-wal', '-shm']) rmSync(path.join(dir, `primary.db${suffix}`), { force: true });
      const a = alert({ dr_action: 'failover', database: 'primary', alertname: 'DrPrimaryDown', severity: 'critical' });
      const answers = await Promise.all(Array.from({ length: 20 }, () => post(c.url, payload([a]))));
      assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200));
      await c.service.alerts.drain();
      const history = await c.service.history(10);
      assert.equal(history.length, 1, JSON.stringify(history, null, 2));
      assert.equal(history[0]!.trigger, 'alert');
      assert.equal(history[0]!.result, 'success', history[0]!.error ?? '');
      assert.equal(history[0]!.from, 'primary');
      assert.equal(history[0]!.to, 'secondary1');
      assert.equal(c.service.currentPrimary(), 'secondary1');
      assert.equal(await counter(c.url, 'dr_alert_notifications_total', { action: 'failover', result: 'executed' }), 1);
      assert.equal(await counter(c.url, 'dr_alert_notifications_total', { action: 'failover', result: 'duplicate' }), 19);
      assert.equal(await counter(c.url, 'dr_failovers_total', { trigger: 'alert', result: 'success' }), 1);

      // Alertmanager fires it again later (new startsAt): the primary was replaced, nothing to do.
      const again = alert({ dr_action: 'failover', database: 'primary', alertname: 'DrPrimaryDown' }, { fingerprint: a.fingerprint, startsAt: '2024-05-01T10:30:00.000Z' });
      const r = await post(c.url, payload([again]));
      assert.equal((r.body as unknown as Receipt).decisions[0]!.outcome, 'suppressed');
      assert.match((r.body as unknown as Receipt).decisions[0]!.why, /primary is not the current primary \(secondary1\)/);
      await c.service.alerts.drain();
      assert.equal((await c.service.history(10)).length, 1, 'still one failover');
    });
  });

  describe('switchover by alert: a primary that still answers is replaced losslessly', () => {
    const critical = (database: string, opts: { fingerprint?: string; startsAt?: string } = {}) =>
      alert({ dr_action: 'failover', database, alertname: 'DrResponseTimeCritical', severity: 'critical' }, opts);

    test('a failover alert about a slow but answering primary, delivered 3 times: exactly one lossless switchover', async () => {
      const logger = memoryLogger();
      const c = await serve('switchover', { token: TOKEN, log: logger.log, failover: 'cooldown: 600' });
      const dir = path.dirname(c.service.config.state.path);
      // The application's writes since the last copy: only the primary holds rows 3..502.
      const db = new Database(path.join(dir, 'primary.db'));
      insertImages(db, 500, 3);
      db.close();
      assert.equal(countImages(path.join(dir, 'secondary1.db')), 3);
      // The primary answers its probes: the alert's rule saw it slow, nothing saw it dead.
      assert.deepEqual((await c.service.test()).map((d) => [d.name, d.status]), [['primary', 'up'], ['secondary1', 'up']]);

      const a = critical('primary');
      const receipts: Receipt[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await post(c.url, payload([a]));
        assert.equal(r.status, 200, JSON.stringify(r.body));
        receipts.push(r.body as unknown as Receipt);
      }
      assert.deepEqual(receipts.map((r) => r.duplicates), [0, 1, 1]);
      assert.equal(receipts[0]!.decisions[0]!.outcome, 'execute', receipts[0]!.decisions[0]!.why);
      await c.service.alerts.drain();

      const history = await c.service.history(10);
      assert.equal(history.length, 1, JSON.stringify(history, null, 2));
      const [done] = history;
      assert.equal(done!.result, 'success', done!.error ?? '');
      assert.equal(done!.trigger, 'alert');
      assert.deepEqual([done!.from, done!.to], ['primary', 'secondary1']);
      assert.equal(done!.dataSync?.complete, true, JSON.stringify(done!.dataSync));
      assert.equal(c.service.currentPrimary(), 'secondary1');
      assert.equal(countImages(path.join(dir, 'secondary1.db')), 503, 'every row written before the switchover is on the new primary');
      const [record] = (await c.service.store.alerts(1000)).filter((x) => x.key.startsWith(a.fingerprint));
      assert.equal(record!.result, 'primary -> secondary1 (epoch 1; lossless)');
      assert.equal(await counter(c.url, 'dr_alert_notifications_total', { action: 'failover', result: 'executed' }), 1);
      assert.equal(await counter(c.url, 'dr_alert_notifications_total', { action: 'failover', result: 'duplicate' }), 2);
      assert.equal(await counter(c.url, 'dr_failovers_total', { trigger: 'alert', result: 'success' }), 1);
      assert.ok(
        logger.lines().some((l) => l.msg === 'disaster-recovery switchover completed: secondary1 is the primary (epoch 1)' && l.kind === 'switchover'),
        logger.text(),
      );

      // The same rule fires about the new primary at once: the one cooldown holds it.
      const next = await post(c.url, payload([critical('secondary1')]));
      assert.equal((next.body as unknown as Receipt).decisions[0]!.outcome, 'suppressed');
      assert.match((next.body as unknown as Receipt).decisions[0]!.why, /less than 600 s ago \(cooldown, \d+ s left\)/);
      // A new firing about the former primary names a database that is no longer the primary.
      const stale = await post(c.url, payload([critical('primary', { fingerprint: a.fingerprint, startsAt: '2024-05-01T11:00:00.000Z' })]));
      assert.match((stale.body as unknown as Receipt).decisions[0]!.why, /^primary is not the current primary \(secondary1\)$/);
      await c.service.alerts.drain();
      assert.equal((await c.service.history(10)).length, 1, 'still one switchover');
    });

    test('refused while automatic failover is off, and for a database that is not the primary: nothing switches', async () => {
      const c = await serve('switchover-off', { token: TOKEN });
      await c.service.setAutoFailover(false);
      const off = await post(c.url, payload([critical('primary')]));
      assert.equal((off.body as unknown as Receipt).decisions[0]!.outcome, 'suppressed');
      assert.equal((off.body as unknown as Receipt).decisions[0]!.why, 'automatic failover is disabled');
      await c.service.setAutoFailover(true);
      const secondary = await post(c.url, payload([critical('secondary1')]));
      assert.equal((secondary.body as unknown as Receipt).decisions[0]!.why, 'secondary1 is not the current primary (primary)');
      await c.service.alerts.drain();
      assert.deepEqual(await c.service.history(10), []);
      assert.equal(c.service.currentPrimary(), 'primary');
      assert.equal(await counter(c.url, 'dr_alert_notifications_total', { action: 'failover', result: 'suppressed' }), 2);
    });
  });

  describe('5xx only when the alert cannot be recorded', () => {
    test('the state store closed: 500, so Alertmanager retries; a bad payload is still 400', async () => {
      const d = await serve('broken', { token: TOKEN });
      assert.equal((await post(d.url, payload([alert({ dr_action: 'none' })]))).status, 200);
      await d.service.store.close();
      const r = await post(d.url, payload([alert({ dr_action: 'none' })]));
      assert.equal(r.status, 500);
      assert.deepEqual(r.body, { error: 'internal error' });
      assert.equal((await post(d.url, { version: '3' })).status, 400);
    });
  });
});
