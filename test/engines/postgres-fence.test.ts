/**
 * The fence's edges against real servers: the probe tells a fenced database
 * from its neighbours, and promotion's handling of the server-wide fence that
 * earlier versions set (ALTER SYSTEM): lifted on a server that holds only the
 * promoted database, refused (nothing changed) on a server that holds others.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig, scrubSecrets } from '../../src/config/load.js';
import { PostgresEngine } from '../../src/engines/postgres.js';
import { ConflictError } from '../../src/errors.js';
import { readOnlyDefault, tryInsert, waitFor } from '../support/failover.js';
import { startPostgres, type PgServer } from '../support/postgres.js';

function engineFor(url: string): PostgresEngine {
  const config = parseConfig(`disaster_recovery:\n  databases:\n    db: { type: primary, priority: 0, url: "${url}" }\n`, 'x.yaml', {});
  return new PostgresEngine(config.databases[0]!, (text) => scrubSecrets(text, config.secrets));
}

/** An earlier dr-sidecar's fence: the whole server read-only by default. */
async function serverWideFence(server: PgServer, database: string): Promise<void> {
  await server.query('ALTER SYSTEM SET default_transaction_read_only = on');
  await server.query('SELECT pg_reload_conf()');
  await waitFor('the server to reload', 10_000, () => readOnlyDefault(server, database));
}

describe('PostgreSQL fence: the probe, and the server-wide fence of earlier versions', { timeout: 60_000 }, () => {
  let shared: PgServer;
  let solo: PgServer;

  before(async () => {
    [shared, solo] = await Promise.all([startPostgres(), startPostgres()]);
    for (const [server, db] of [[shared, 'image_crawler_primary'], [shared, 'image_crawler_backup'], [solo, 'images']] as const) {
      await server.createDatabase(db);
      await server.query('CREATE TABLE items (id integer PRIMARY KEY)', [], db);
    }
  });
  after(async () => {
    await shared?.destroy();
    await solo?.destroy();
  });

  test('the probe says read-only for the fenced database only', async () => {
    const primary = engineFor(shared.url({ database: 'image_crawler_primary' }));
    const backup = engineFor(shared.url({ database: 'image_crawler_backup' }));
    const fence = await primary.fence(5000);
    try {
      const [p, b] = await Promise.all([primary.probe(5000), backup.probe(5000)]);
      assert.deepEqual([p.up, p.readOnly, b.up, b.readOnly], [true, true, true, false]);
    } finally {
      await fence.release();
    }
    assert.equal((await primary.probe(5000)).readOnly, false, 'released');
  });

  test('a server-wide fence on a server holding only the promoted database is lifted by the promotion', async () => {
    await serverWideFence(solo, 'images');
    await engineFor(solo.url({ database: 'images' })).promote(5000);
    assert.equal(await readOnlyDefault(solo, 'images'), false);
    assert.equal(await tryInsert(solo, 1, 'images'), 'ok');
  });

  test('a server-wide fence on a server holding other databases: promotion refused, saying what to do, the fence kept', async () => {
    await serverWideFence(shared, 'image_crawler_backup');
    try {
      await assert.rejects(engineFor(shared.url({ database: 'image_crawler_backup' })).promote(5000), (error: Error) => {
        assert.ok(error instanceof ConflictError, String(error));
        assert.match(error.message, /^image_crawler_backup stays read-only: the whole server 127\.0\.0\.1:\d+ has default_transaction_read_only = on \(ALTER SYSTEM/);
        assert.match(error.message, /it also holds image_crawler_primary, which lifting it would open to writes/);
        return true;
      });
      assert.equal(await readOnlyDefault(shared, 'image_crawler_primary'), true, 'the other database stays fenced');
      assert.equal(await readOnlyDefault(shared, 'image_crawler_backup'), true);
    } finally {
      await shared.query('ALTER SYSTEM RESET default_transaction_read_only');
      await shared.query('SELECT pg_reload_conf()');
    }
  });
});
