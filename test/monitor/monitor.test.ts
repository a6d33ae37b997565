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

/** When a probe started: it ended at checkedAt, after responseTimeSeconds. */
const startOf = (health: Pick<DatabaseHealth, 'last'>) => health.last!.checkedAt - health.last!.responseTimeSeconds * 1000;

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
  monitoring: { check_interval: 0.3, probe_timeout: 3 }
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

  test('a stopped server turns dr_database_up to 0 at the first probe after the stop, and its failures in a row rise', async () => {
    assert.equal(await metric('dr_database_up', 'pg_stopped'), 1);
    await stopped.stop('fast');
    const stoppedAt = Date.now();
    // A probe under way at the stop may still answer up; the first one started after it says down, at once.
    const afterStop = () => probes.filter((p) => p.name === 'pg_stopped' && startOf(p.health) >= stoppedAt);
    await waitFor('a probe of pg_stopped started after the stop', () => afterStop().length > 0, 10_000);
    const first = afterStop()[0]!.health;
    assert.equal(first.last!.up, false, JSON.stringify(first.last));
    assert.equal(first.status, 'down', 'down at the first failed probe, not after a threshold');
    assert.equal(await metric('dr_database_up', 'pg_stopped'), 0);
    await waitFor('3 failures in a row', () => service.monitor.health('pg_stopped')!.consecutiveFailures >= 3, 15_000);
    assert.ok((await metric('dr_database_consecutive_failures', 'pg_stopped'))! >= 3);
    assert.ok((await metric('dr_database_errors_total', 'pg_stopped'))! >= 3);
    assert.equal(await metric('dr_database_up', 'primary'), 1, 'the others stay up');
  });

  test('a hung server times out without delaying the other databases\' probes', async () => {
    hung.pause();
    // While its probe waits, the response time shows the wait so far (a response_time rule sees a hang before the timeout).
    await waitFor('a probe of pg_hung under way for 0.5 s', () => (service.monitor.probeUnderWaySeconds('pg_hung') ?? 0) >= 0.5, 15_000);
    assert.ok((await metric('dr_database_response_time_seconds', 'pg_hung'))! >= 0.5);
    await waitFor('pg_hung down', () => service.monitor.health('pg_hung')?.status === 'down', 15_000);
    const timedOut = service.monitor.health('pg_hung')!.last!;
    assert.match(timedOut.error!, /timed out/);
    // The probe gave up after probe_timeout (3 s), not sooner (its own timer: a lower bound load cannot break).
    assert.ok(timedOut.responseTimeSeconds >= 2.9, `the hung probe gave up after ${timedOut.responseTimeSeconds} s (probe_timeout 3 s)`);

    // Meanwhile the SQLite primary went on being probed every 0.3 s: about ten probes; a monitor that waited
    // for the hung probe would have made one at most.
    const hungFrom = startOf({ last: timedOut });
    const meanwhile = probes.filter((p) => p.name === 'primary' && startOf(p.health) > hungFrom && p.health.last!.checkedAt < timedOut.checkedAt);
    assert.ok(meanwhile.length >= 3, `${meanwhile.length} SQLite probes while the hung probe waited ${timedOut.responseTimeSeconds} s`);
    hung.resume();
    await waitFor('pg_hung up again', () => service.monitor.health('pg_hung')?.status === 'up', 15_000);
  });

  test('probe history is kept per database', () => {
    const summary = service.monitor.history('primary')!.summary();
    assert.ok(summary.samples >= 5);
    assert.equal(summary.availability, 1);
    assert.ok(service.monitor.history('pg_stopped')!.summary().availability! < 1);
  });
});

describe('the monitor spreads the databases over the interval', () => {
  test('all are probed at once at the start, then each at its own phase, then every interval', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const names = ['a', 'b', 'c', 'd'];
    for (const name of names) makeImagesDb(path.join(tmp.dir, `${name}.db`), 2);
    // 2 s: the phases (0.5, 1, 1.5, 2 s) lie far more apart than a loaded machine delays a timer.
    const intervalMs = 2000;
    const config = parseConfig(
      `
state: { path: "${tmp.dir}/state.db" }
disaster_recovery:
  enabled: true
  databases:
${names.map((name, i) => `    ${name}: { type: ${i === 0 ? 'primary' : 'secondary'}, priority: ${i}, url: "sqlite:///${tmp.dir}/${name}.db" }`).join('\n')}
  monitoring: { check_interval: ${intervalMs / 1000} }
`,
      'x.yaml',
      {},
    );
    createStateStore(config);
    const service = new DisasterRecoveryService(config, silentLogger());
    t.after(() => service.stop());
    const seen = new Map<string, number[]>(names.map((n) => [n, []]));
    service.monitor.on('probe', (health) => seen.get(health.name)!.push(startOf(health)));
    service.start();
    await waitFor('three probes of every database', () => [...seen.values()].every((at) => at.length >= 3), 30_000);
    await service.stop();

    // The first probes start in one turn of the event loop, before any database's phase (a quarter interval) is up.
    const first = names.map((n) => seen.get(n)![0]!);
    assert.ok(Math.max(...first) - Math.min(...first) < intervalMs / 4, `first probes together: ${first.map((f) => f - Math.min(...first))}`);
    // The second probe of the i-th of 4 comes (4 - i) / 4 of an interval after its first (2, 1.5, 1, 0.5 s):
    // the last database's before the first's.
    assert.ok(seen.get('d')![1]! < seen.get('a')![1]!, `second probes spread over the interval, the last database first: ${names.map((n) => seen.get(n)![1]! - Math.min(...first))}`);
    // Then every interval: never sooner (the monitor's own timer; 100 ms for a probe's wait for a worker,
    // which the start read from a result leaves out), and not a second interval later.
    for (const n of names) {
      const at = seen.get(n)!;
      for (let i = 2; i < at.length; i++) {
        const gap = at[i]! - at[i - 1]!;
        assert.ok(gap >= intervalMs - 100 && gap < 2 * intervalMs, `${n}: ${gap} ms between probes (interval ${intervalMs} ms)`);
      }
    }
  });
});
