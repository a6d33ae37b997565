/**
 * The guide's PostgreSQL config on ONE server: image_crawler_primary and
 * image_crawler_backup on the same port, with an unrelated database beside
 * them. A switchover fences the database it leaves and nothing else: the new
 * primary takes writes, the unrelated database keeps its sessions (and an open
 * transaction) and its writes; fencing a former primary that came back
 * writable leaves the new primary writable; a read-only primary is not routed to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { DisasterRecoveryService } from '../../src/service.js';
import { allUp, memoryLogger, readOnlyDefault, tempFolder, tryInsert, waitFor, writeFailoverConfig } from '../support/failover.js';
import { startPostgres, type PgServer } from '../support/postgres.js';

const PRIMARY_DB = 'image_crawler_primary';
const BACKUP_DB = 'image_crawler_backup';
const OTHER_DB = 'other_app';
/** SQLSTATE of a write in a read-only transaction. */
const READ_ONLY = '25006';

describe('PostgreSQL: the guide\'s two databases on one server, and a third beside them', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let server: PgServer;
  let sidecar: DisasterRecoveryService;
  let http: RunningServer;
  /** A session of the unrelated database, open from start to end. */
  let other: pg.Client;
  let otherPid: number;
  let nextId = 1000;

  const route = async (path = '/primary') => {
    const res = await fetch(`${http.url}${path}`);
    return { status: res.status, body: (await res.json()) as { name: string | null; status: string } };
  };
  const rows = async (database: string) => (await server.query<{ n: number }>('SELECT count(*)::int AS n FROM items', [], database))[0]!.n;
  /** The unrelated database kept its session and takes writes through it and through a new one. */
  const assertOtherUntouched = async () => {
    assert.equal((await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid, otherPid, 'the session of the other database lives on');
    await other.query('INSERT INTO items (id) VALUES ($1)', [nextId++]);
    assert.equal(await tryInsert(server, nextId++, OTHER_DB), 'ok');
    assert.equal(await readOnlyDefault(server, 'postgres'), false, 'the server itself is not read-only');
  };

  before(async () => {
    server = await startPostgres();
    for (const db of [PRIMARY_DB, BACKUP_DB, OTHER_DB]) {
      await server.createDatabase(db);
      await server.query('CREATE TABLE items (id integer PRIMARY KEY)', [], db);
    }
    await server.query('INSERT INTO items (id) SELECT generate_series(1, 50)', [], PRIMARY_DB);
    other = new pg.Client({ connectionString: server.url({ database: OTHER_DB }) });
    other.on('error', () => undefined);
    await other.connect();
    otherPid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const written = writeFailoverConfig({
      dir: tmp.dir,
      // Nothing automatic: the former primary's probes fail on purpose below.
      autoFailover: false,
      databases: [
        { name: 'primary', type: 'primary', priority: 0, url: server.url({ database: PRIMARY_DB }) },
        { name: 'secondary1', type: 'secondary', priority: 1, url: server.url({ database: BACKUP_DB }) },
      ],
    });
    sidecar = new DisasterRecoveryService(written.config, sidecarLog.log);
    http = await listen(createApp(sidecar, sidecarLog.log), '127.0.0.1', 0);
    await sidecar.start();
    await allUp(sidecar);
  });

  after(async (t) => {
    if ((t as unknown as { passed?: boolean }).passed === false) console.log(sidecarLog.text());
    await other?.end().catch(() => undefined);
    await http?.close();
    await sidecar?.stop();
    await server?.destroy();
    tmp.cleanup();
  });

  test('switchover image_crawler_primary -> image_crawler_backup fences the old database only', async () => {
    const app = new pg.Client({ connectionString: server.url({ database: PRIMARY_DB }) });
    app.on('error', () => undefined);
    await app.connect();
    // A transaction of the other database open across the whole switchover.
    await other.query('BEGIN');
    await other.query('INSERT INTO items (id) VALUES ($1)', [nextId++]);

    const record = await sidecar.failover({ trigger: 'manual', target: 'secondary1', reason: '维护升级', ifPrimaryAnswers: 'switch over' });
    assert.equal(record.result, 'success', JSON.stringify(record));
    assert.equal(record.dataSync?.method, 'dump-restore');

    await other.query('INSERT INTO items (id) VALUES ($1)', [nextId++]);
    await other.query('COMMIT');
    assert.equal(await tryInsert(server, 1, PRIMARY_DB), READ_ONLY, 'the old primary refuses writes');
    await assert.rejects(app.query('SELECT 1'), 'the old primary\'s application session was ended');
    assert.equal(await tryInsert(server, 51, BACKUP_DB), 'ok', 'the new primary takes writes');
    assert.equal(await rows(BACKUP_DB), 51, 'the new primary holds the 50 rows and the new one');
    assert.equal(await readOnlyDefault(server, BACKUP_DB), false);
    await assertOtherUntouched();
    assert.deepEqual(await route(), { status: 200, body: { ...(await route()).body, name: 'secondary1', status: 'up' } });
  });

  test('the former primary coming back writable is fenced again, and the new primary stays writable', async () => {
    // Someone lifts the old primary's fence by hand while it is unreachable.
    await server.query(`ALTER DATABASE ${PRIMARY_DB} RESET default_transaction_read_only`);
    await server.query(`ALTER DATABASE ${PRIMARY_DB} ALLOW_CONNECTIONS false`);
    await waitFor('the sidecar to see the former primary down', 15_000, () => sidecar.monitor.health('primary')?.status === 'down');
    await server.query(`ALTER DATABASE ${PRIMARY_DB} ALLOW_CONNECTIONS true`);
    await waitFor('the sidecar to fence the returning former primary', 15_000, () =>
      sidecarLog.lines().some((l) => /former primary primary came back writable and was fenced/.test(String(l.msg))),
    );
    assert.equal(await readOnlyDefault(server, PRIMARY_DB), true);
    assert.equal(await tryInsert(server, 2, PRIMARY_DB), READ_ONLY);
    assert.equal(await readOnlyDefault(server, BACKUP_DB), false, 'the new primary is not made read-only');
    assert.equal(await tryInsert(server, 52, BACKUP_DB), 'ok');
    await assertOtherUntouched();
    assert.equal((await route()).status, 200);
    assert.equal((await route('/primary/secondary1')).status, 200);
  });

  test('/primary and /primary/:name answer 503 "read-only" while the primary refuses writes', async () => {
    await server.query(`ALTER DATABASE ${BACKUP_DB} SET default_transaction_read_only = on`);
    try {
      // Seen at the next probe of the primary.
      const answer = await waitFor('/primary to turn writers away', 10_000, async () => {
        const r = await route();
        return r.status === 503 && r;
      });
      assert.equal(answer.body.name, 'secondary1');
      assert.equal(answer.body.status, 'read-only');
      assert.equal((await route('/primary/secondary1')).status, 503);
      assert.equal(sidecar.status().databases.find((d) => d.name === 'secondary1')?.read_only, true);
      assert.match(await (await fetch(`${http.url}/metrics`)).text(), /^dr_database_read_only\{database="secondary1"\} 1$/m);
    } finally {
      await server.query(`ALTER DATABASE ${BACKUP_DB} RESET default_transaction_read_only`);
    }
    assert.deepEqual([(await route()).status, (await route()).body.status], [200, 'up']);
  });

  test('switch back image_crawler_backup -> image_crawler_primary: the fenced former primary is restored into and opened, the other fenced', async () => {
    const record = await sidecar.failover({ trigger: 'manual', target: 'primary', reason: 'switch back', ifPrimaryAnswers: 'switch over' });
    assert.equal(record.result, 'success', JSON.stringify(record));
    assert.equal(await tryInsert(server, 53, PRIMARY_DB), 'ok');
    assert.equal(await rows(PRIMARY_DB), 53, 'the rows written to image_crawler_backup came back');
    assert.equal(await tryInsert(server, 54, BACKUP_DB), READ_ONLY);
    await assertOtherUntouched();
    assert.equal((await route()).body.name, 'primary');
    assert.equal((await route()).status, 200);
  });
});
