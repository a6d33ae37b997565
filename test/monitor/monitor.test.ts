import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import type { DatabaseHealth } from '../../src/monitor/health.js';
import { DisasterRecoveryService } from '../../src/service.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { makeImagesDb, tempDir } from '../support/sqlite.js';
import { createStateStore } from '../support/state-store.js';

const waitFor = async (what: string, check: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('the monitor probes every database on its own clock', () => {
  const tmp = tempDir();
  let stopped: PgServer;
  let hung: PgServer;
  let service: DisasterRecoveryService;
  const probes: Array<{ name: string; at: number; health: DatabaseHealth }> = [];

  before(async () => {
    [stopped, hung] = await Promise.all([startPostgres(), startPostgres()]);
    makeImagesDb(path.join(tmp.dir, 'primary.db'), 10);
    const config = parseConfig(
      `
state: { path: "${tmp.dir}/state.db" }
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///${tmp.dir}/primary.db" }
    pg_stopped: { type: secondary, priority: 1, url: "${stopped.url()}" }
    pg_hung: { type: secondary, priority: 2, url: "${hung.url()}" }
  monitoring: { check_interval: 0.3, probe_timeout: 1.5 }
`,
      'x.yaml',
      {},
    );
    createStateStore(config);
    service = new DisasterRecoveryService(config, silentLogger());
    service.monitor.on('probe', (health) => probes.push({ name: health.name, at: Date.now(), health }));
    service.start();
    await waitFor('every database up', () => service.monitor.snapshot().every((h) => h.status === 'up'), 10_000);
  });
  after(async () => {
    await service?.stop();
    hung?.resume();
    await Promise.all([stopped?.destroy(), hung?.destroy()]);
    tmp.cleanup();
  });

  const metric = async (name: string, database: string) => {
    const text = await service.metrics.expose();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{database="${database}"}`));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  test('a stopped server turns dr_database_up to 0 within one interval, and its failures in a row rise', async () => {
    assert.equal(await metric('dr_database_up', 'pg_stopped'), 1);
    await stopped.stop('fast');
    const stoppedAt = Date.now();
    await waitFor('pg_stopped down', () => service.monitor.health('pg_stopped')?.status === 'down', 5000);
    assert.ok(Date.now() - stoppedAt <= 300 + 250, `down after ${Date.now() - stoppedAt} ms (interval 300 ms)`);
    assert.equal(await metric('dr_database_up', 'pg_stopped'), 0);
    await waitFor('3 failures in a row', () => service.monitor.health('pg_stopped')!.consecutiveFailures >= 3, 5000);
    assert.ok((await metric('dr_database_consecutive_failures', 'pg_stopped'))! >= 3);
    assert.ok((await metric('dr_database_errors_total', 'pg_stopped'))! >= 3);
    assert.equal(await metric('dr_database_up', 'primary'), 1, 'the others stay up');
  });

  test('a hung server times out without delaying the other databases\' probes', async () => {
    hung.pause();
    const pausedAt = Date.now();
    // While its probe waits, the response time shows the wait so far (a response_time rule sees a hang before the timeout).
    await waitFor('a probe of pg_hung under way for 0.5 s', () => (service.monitor.probeUnderWaySeconds('pg_hung') ?? 0) >= 0.5, 5000);
    assert.ok((await metric('dr_database_response_time_seconds', 'pg_hung'))! >= 0.5);
    await waitFor('pg_hung down', () => service.monitor.health('pg_hung')?.status === 'down', 5000);
    const downAfter = Date.now() - pausedAt;
    assert.match(service.monitor.health('pg_hung')!.last!.error!, /timed out/);
    assert.ok(downAfter >= 1000 && downAfter < 3000, `hung probe answered after ${downAfter} ms (timeout 1.5 s)`);

    const sqliteProbes = probes.filter((p) => p.name === 'primary' && p.at >= pausedAt);
    const gaps = sqliteProbes.slice(1).map((p, i) => p.at - sqliteProbes[i]!.at);
    assert.ok(sqliteProbes.length >= Math.floor(downAfter / 300) - 1, `${sqliteProbes.length} SQLite probes while the hung probe waited ${downAfter} ms`);
    assert.ok(Math.max(...gaps) < 600, `largest gap between SQLite probes ${Math.max(...gaps)} ms`);
    hung.resume();
    await waitFor('pg_hung up again', () => service.monitor.health('pg_hung')?.status === 'up', 5000);
  });

  test('probe history is kept per database', () => {
    const summary = service.monitor.history('primary')!.summary();
    assert.ok(summary.samples >= 5);
    assert.equal(summary.availability, 1);
    assert.ok(service.monitor.history('pg_stopped')!.summary().availability! < 1);
  });
});

describe('the monitor spreads the databases over the interval', () => {
  test('all are probed at once at the start, then each at its own phase; no database waits longer than an interval', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const names = ['a', 'b', 'c', 'd'];
    for (const name of names) makeImagesDb(path.join(tmp.dir, `${name}.db`), 2);
    const config = parseConfig(
      `
state: { path: "${tmp.dir}/state.db" }
disaster_recovery:
  enabled: true
  databases:
${names.map((name, i) => `    ${name}: { type: ${i === 0 ? 'primary' : 'secondary'}, priority: ${i}, url: "sqlite:///${tmp.dir}/${name}.db" }`).join('\n')}
  monitoring: { check_interval: 0.8 }
`,
      'x.yaml',
      {},
    );
    createStateStore(config);
    const service = new DisasterRecoveryService(config, silentLogger());
    t.after(() => service.stop());
    const seen = new Map<string, number[]>(names.map((n) => [n, []]));
    service.monitor.on('probe', (health) => seen.get(health.name)!.push(health.last!.checkedAt));
    service.start();
    await waitFor('four probes of every database', () => [...seen.values()].every((at) => at.length >= 4), 10_000);
    await service.stop();

    const first = names.map((n) => seen.get(n)![0]!);
    assert.ok(Math.max(...first) - Math.min(...first) < 300, `first probes together: ${first}`);
    // The second probe of the i-th of 4 comes (4 - i) / 4 of an interval after its first: 800, 600, 400, 200 ms.
    const phase = names.map((n) => seen.get(n)![1]! - seen.get(n)![0]!);
    for (let i = 1; i < names.length; i++) assert.ok(phase[i]! < phase[i - 1]!, `phases decrease down the list: ${phase}`);
    const seconds = names.map((n) => seen.get(n)![1]!);
    assert.ok(Math.max(...seconds) - Math.min(...seconds) >= 350, `second probes spread over the interval: ${seconds.map((s) => s - Math.min(...seconds))}`);
    for (const n of names) {
      const at = seen.get(n)!;
      for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! < 800 + 250, `${n}: ${at[i]! - at[i - 1]!} ms between probes`);
    }
  });
});
