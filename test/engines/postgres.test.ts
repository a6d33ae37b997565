import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseConfig, scrubSecrets } from '../../src/config/load.js';
import { PostgresEngine } from '../../src/engines/postgres.js';
import { waitFor } from '../support/failover.js';
import { startPostgres, startStandby, waitForReplay, type PgServer } from '../support/postgres.js';

function engineFor(url: string): PostgresEngine {
  const config = parseConfig(`disaster_recovery:\n  databases:\n    db: { type: primary, priority: 0, url: "${url}" }\n`, 'x.yaml', {});
  return new PostgresEngine(config.databases[0]!, (text) => scrubSecrets(text, config.secrets));
}

describe('PostgreSQL engine against real servers', () => {
  let primary: PgServer;
  let standby: PgServer;

  before(async () => {
    primary = await startPostgres();
    await primary.createDatabase('images');
    await primary.query('CREATE TABLE images (id serial PRIMARY KEY, url text NOT NULL)', [], 'images');
    await primary.query("INSERT INTO images (url) SELECT 'https://example.com/' || g FROM generate_series(1, 5000) g", [], 'images');
    standby = await startStandby(primary);
    await waitForReplay(primary, standby);
  });
  after(async () => {
    await standby?.destroy();
    await primary?.destroy();
  });

  test('primary: up, not in recovery, size as pg_database_size, no lag', async () => {
    const result = await engineFor(primary.url({ database: 'images' })).probe(5000);
    assert.equal(result.up, true, result.error);
    assert.equal(result.inRecovery, false);
    assert.equal(result.replicationLagSeconds, undefined);
    const [row] = await primary.query<{ size: string }>("SELECT pg_database_size('images') AS size");
    assert.equal(result.sizeBytes, Number(row!.size));
    assert.ok(result.sizeBytes! > 1_000_000, 'a real database of a few MB');
  });

  test('connection count rises by the five connections a client opens', async () => {
    const engine = engineFor(primary.url({ database: 'images' }));
    const before = (await engine.probe(5000)).connections!;
    const clients = Array.from({ length: 5 }, () => new pg.Client({ connectionString: primary.url({ database: 'images' }) }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const during = (await engine.probe(5000)).connections!;
      assert.equal(during, before + 5);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  test('standby: in recovery with zero lag while streaming; lag grows once its primary is gone', async () => {
    const engine = engineFor(standby.url({ database: 'images' }));
    await primary.query("INSERT INTO images (url) VALUES ('latest')", [], 'images');
    await waitForReplay(primary, standby);
    const streaming = await engine.probe(5000);
    assert.equal(streaming.up, true, streaming.error);
    assert.equal(streaming.inRecovery, true);
    assert.equal(streaming.replicationLagSeconds, 0);

    await primary.stop('immediate');
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const cutOff = await engine.probe(5000);
      assert.equal(cutOff.up, true);
      assert.ok(cutOff.replicationLagSeconds! >= 1, `lag ${cutOff.replicationLagSeconds} s after the primary stopped`);
    } finally {
      await primary.start();
    }
  });

  test('a stopped server is down: connection refused, answered at once', async () => {
    const server = await startPostgres();
    const engine = engineFor(server.url());
    assert.equal((await engine.probe(5000)).up, true);
    await server.stop('fast');
    const result = await engine.probe(5000);
    await server.destroy();
    assert.equal(result.up, false);
    assert.equal(result.error, 'connection refused');
    assert.ok(result.responseTimeSeconds < 1);
  });

  test('a server that accepts connections but never answers times out while it still hangs, not before the bound', async () => {
    const server = await startPostgres();
    try {
      server.pause();
      const started = performance.now();
      // The server is resumed only after this: a probe without a timeout would never answer.
      let answer: Awaited<ReturnType<PostgresEngine['probe']>> | undefined;
      void engineFor(server.url()).probe(800).then((r) => (answer = r));
      const result = await waitFor('the probe of the paused server to give up', 10_000, () => answer);
      const elapsed = performance.now() - started;
      assert.equal(result.up, false);
      assert.match(result.error!, /timed out/);
      // Not before its 800 ms bound: the probe's own timer (a lower bound load cannot break).
      assert.ok(elapsed >= 750, `gave up after ${elapsed} ms (bound 800 ms)`);
    } finally {
      server.resume();
      await server.destroy();
    }
  });

  test('a wrong password is down with the reason, and the password is nowhere in it', async () => {
    const server = await startPostgres({ passwordAuth: true });
    try {
      await server.createUser('crawler', 'right-Pa55word', true);
      const good = await engineFor(server.url({ user: 'crawler', password: 'right-Pa55word' })).probe(5000);
      assert.equal(good.up, true, good.error);
      const bad = await engineFor(server.url({ user: 'crawler', password: 'wrong-Pa55word' })).probe(5000);
      assert.equal(bad.up, false);
      assert.match(bad.error!, /password authentication failed/);
      assert.doesNotMatch(JSON.stringify(bad), /Pa55word/);
    } finally {
      await server.destroy();
    }
  });

  test('probes leave no connection behind', async () => {
    const engine = engineFor(primary.url({ database: 'images' }));
    for (let i = 0; i < 20; i++) await engine.probe(5000);
    await new Promise((r) => setTimeout(r, 200));
    const [row] = await primary.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'dr-sidecar'");
    assert.equal(row!.n, 0);
  });
});
