import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { DisasterRecoveryService } from '../../src/service.js';
import { freePort, startPostgres, type PgServer } from '../support/postgres.js';
import { makeImagesDb, tempDir } from '../support/sqlite.js';
import { runCli, startMonitoring } from '../support/cli.js';
import { createStateStore } from '../support/state-store.js';

const PASSWORD = 'Tr4ce-secret-pw';
const TOKEN = 'trace-token-0123456789';

describe('traces: probes and failover phases, never a secret', () => {
  const tmp = tempDir();
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let pgServer: PgServer;
  let service: DisasterRecoveryService;

  before(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    pgServer = await startPostgres({ passwordAuth: true });
    await pgServer.createUser('crawler', PASSWORD, true);
    makeImagesDb(path.join(tmp.dir, 'p.db'), 20);
    makeImagesDb(path.join(tmp.dir, 's1.db'), 0);
    const config = parseConfig(
      `
server: { auth_token: "${TOKEN}" }
state: { path: "${tmp.dir}/state.db" }
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///${tmp.dir}/p.db" }
    secondary1: { type: secondary, priority: 1, url: "sqlite:///${tmp.dir}/s1.db" }
    reports: { type: secondary, priority: 2, url: "${pgServer.url({ user: 'crawler', password: PASSWORD })}" }
`,
      'x.yaml',
      {},
    );
    createStateStore(config);
    service = await DisasterRecoveryService.open(config, silentLogger());
  });
  after(async () => {
    await service?.stop();
    await pgServer?.destroy();
    await provider.shutdown();
    trace.disable();
    context.disable();
    tmp.cleanup();
  });

  test('a probe is a span per database with its result', async () => {
    exporter.reset();
    await service.monitor.probeAll();
    const probes = exporter.getFinishedSpans().filter((s) => s.name === 'probe');
    assert.deepEqual(probes.map((s) => s.attributes['dr.database']).sort(), ['primary', 'reports', 'secondary1']);
    assert.ok(probes.every((s) => s.attributes['dr.up'] === true));
    assert.equal(probes.find((s) => s.attributes['dr.database'] === 'reports')!.attributes['db.system'], 'postgresql');
  });

  test('a failover is one trace with a span per phase', async () => {
    exporter.reset();
    const record = await service.failover({ trigger: 'manual', target: 'secondary1', reason: 'trace test', ifPrimaryAnswers: 'switch over' });
    assert.equal(record.result, 'success');
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'failover')!;
    assert.ok(root, 'a failover span');
    assert.equal(root.attributes['dr.result'], 'success');
    assert.equal(root.attributes['dr.to'], 'secondary1');
    const children = spans.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId).map((s) => s.name);
    for (const phase of ['failover.choose', 'failover.fence', 'failover.sync', 'failover.promote', 'failover.switch', 'failover.follow']) {
      assert.ok(children.includes(phase), `missing phase ${phase} in ${children.join(', ')}`);
    }
    assert.ok(spans.every((s) => s.spanContext().traceId === root.spanContext().traceId || s.name === 'probe'));
  });

  test('no span attribute or event holds the password or the token', () => {
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => ({ a: s.attributes, e: s.events, n: s.name })));
    assert.ok(!text.includes(PASSWORD));
    assert.ok(!text.includes(TOKEN));
  });
});

describe('traces from the real command over OTLP/HTTP', () => {
  test('start-monitoring exports probe and HTTP spans (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT, and no metrics or logs; /metrics is not traced; nothing secret', async (t) => {
    const exports: { path: string; contentType: string; body: string }[] = [];
    const collector = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        // Protobuf carries strings as their UTF-8 bytes: span names, attribute keys and values can be searched as text.
        exports.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks).toString('latin1') });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    t.after(() => collector.close());
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const pgServer = await startPostgres({ passwordAuth: true });
    t.after(() => pgServer.destroy());
    await pgServer.createUser('crawler', PASSWORD, true);
    makeImagesDb(path.join(tmp.dir, 'p.db'), 5);
    const port = await freePort();
    const configFile = path.join(tmp.dir, 'config.yaml');
    (await import('node:fs')).writeFileSync(
      configFile,
      `
server: { port: ${port}, auth_token: "${TOKEN}" }
state: { path: "${tmp.dir}/state.db" }
logging: { level: error }
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///${tmp.dir}/p.db" }
    reports: { type: secondary, priority: 1, url: "${pgServer.url({ user: 'crawler', password: PASSWORD })}" }
  monitoring: { check_interval: 0.5 }
`,
    );
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    const sidecar = await startMonitoring({ args: ['--config', configFile], port, cwd: tmp.dir, env });
    await fetch(`http://127.0.0.1:${port}/metrics`);
    await fetch(`http://127.0.0.1:${port}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    await new Promise((r) => setTimeout(r, 1500));
    const stopped = await sidecar.stop('SIGTERM');
    assert.equal(stopped.code, 0);
    assert.ok(exports.length > 0, 'the collector received exports');
    assert.deepEqual([...new Set(exports.map((e) => e.path))], ['/v1/traces'], 'traces only: no OpenTelemetry metrics or logs are exported');
    assert.deepEqual([...new Set(exports.map((e) => e.contentType))], ['application/x-protobuf'], 'OTLP over http/protobuf, the standard default');
    const all = exports.map((e) => e.body).join('\n');
    assert.ok(all.includes('\x05probe'), 'probe spans (a protobuf string is its length, then its bytes)');
    assert.match(all, /dr\.database/);
    assert.match(all, /\/api\/status/, 'the API request is traced');
    assert.ok(!all.includes('/metrics'), '/metrics is not traced');
    assert.match(all, /pg\.connect|postgresql/, 'pg is instrumented');
    assert.ok(!all.includes(PASSWORD), 'no password in exported spans');
    assert.ok(!all.includes(TOKEN), 'no token in exported spans');
    const plain = await runCli(['--config', configFile, 'test'], { cwd: tmp.dir });
    assert.equal(plain.code, 0, 'without the endpoint the command works as before');
  });
});
