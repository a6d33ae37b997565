/**
 * A sidecar whose PostgreSQL role is not a superuser, through the real CLI, on
 * the guide's two databases of one server: without the rights a switchover
 * needs (own both databases, pg_signal_backend to end the application's
 * sessions) the switchover is refused, saying what is missing, and nothing is
 * half done: no fence left, no session ended, no switch recorded. With them, it succeeds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { DisasterRecoveryService } from '../../src/service.js';
import { runCli, type CliResult } from '../support/cli.js';
import { allUp, memoryLogger, readOnlyDefault, tempFolder, tryInsert, writeFailoverConfig } from '../support/failover.js';
import { startPostgres, type PgServer } from '../support/postgres.js';

const PRIMARY_DB = 'image_crawler_primary';
const BACKUP_DB = 'image_crawler_backup';
const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

describe('PostgreSQL switchover by a role that is not a superuser', { timeout: 120_000 }, () => {
  const tmp = tempFolder();
  const sidecarLog = memoryLogger('debug');
  let server: PgServer;
  let sidecar: DisasterRecoveryService;
  let configFile: string;
  /** The application's session of the primary, as its own role. */
  let app: pg.Client;
  let appPid: number;
  const cli = (args: string[]) => runCli(['--config', configFile, ...args], { cwd: tmp.dir, timeoutMs: 60_000 });

  before(async () => {
    server = await startPostgres();
    await server.createUser('dr', 'dr-password-1');
    await server.createUser('app', 'app-password-1');
    for (const db of [PRIMARY_DB, BACKUP_DB]) {
      await server.createDatabase(db);
      // The sidecar's role owns the tables it copies, not (yet) the databases.
      await server.query('CREATE TABLE items (id integer PRIMARY KEY); ALTER TABLE items OWNER TO dr; GRANT ALL ON items TO app', [], db);
    }
    app = new pg.Client({ connectionString: server.url({ database: PRIMARY_DB, user: 'app' }) });
    app.on('error', () => undefined);
    await app.connect();
    appPid = (await app.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const written = writeFailoverConfig({
      dir: tmp.dir,
      autoFailover: false,
      databases: [
        { name: 'primary', type: 'primary', priority: 0, url: server.url({ database: PRIMARY_DB, user: 'dr', password: 'dr-password-1' }) },
        { name: 'secondary1', type: 'secondary', priority: 1, url: server.url({ database: BACKUP_DB, user: 'dr', password: 'dr-password-1' }) },
      ],
    });
    configFile = written.file;
    sidecar = new DisasterRecoveryService(written.config, sidecarLog.log);
    await sidecar.start();
    await allUp(sidecar);
  });

  after(async () => {
    await app?.end().catch(() => undefined);
    await sidecar?.stop();
    await server?.destroy();
    tmp.cleanup();
  });

  let nextId = 1;
  /** The refusal is in the history; the primary, its fence setting and the application's session are as they were. */
  async function assertRefusedAndNothingChanged(why: RegExp): Promise<void> {
    const [last] = await sidecar.history(1);
    assert.equal(last?.result, 'refused');
    assert.match(last?.error ?? '', why);
    const state = await sidecar.refreshState();
    assert.equal(sidecar.currentPrimary(), 'primary');
    assert.equal(state.epoch, 0);
    assert.deepEqual(state.demoted, []);
    assert.equal(await readOnlyDefault(server, PRIMARY_DB), false, 'the primary is not left fenced');
    assert.deepEqual(await server.query('SELECT setdatabase FROM pg_db_role_setting'), [], 'no database-level setting left behind');
    assert.equal((await app.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid, appPid, 'the application\'s session lives on');
    await app.query('INSERT INTO items (id) VALUES ($1)', [nextId++]);
  }

  test('without owning the new primary\'s database: refused before anything changes', async () => {
    const run = await cli(['failover', 'secondary1', '--reason', '维护升级']);
    assert.equal(run.code, 1, show(run));
    const why = /role "dr" may not make image_crawler_backup the primary: lifting its read-only setting \(ALTER DATABASE … RESET\) needs its owner or a superuser: ALTER DATABASE "image_crawler_backup" OWNER TO "dr"/;
    assert.match(run.stderr, why, show(run));
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
    await assertRefusedAndNothingChanged(why);
  });

  test('owning it, but neither the primary\'s database nor pg_signal_backend: the fence is refused, nothing half done', async () => {
    await server.query(`ALTER DATABASE ${BACKUP_DB} OWNER TO dr`);
    const run = await cli(['failover', 'secondary1', '--reason', '维护升级']);
    assert.equal(run.code, 1, show(run));
    const why = new RegExp(
      'cannot fence the primary primary, so the switch would not be lossless: role "dr" may not fence image_crawler_primary: ' +
        'making it read-only \\(ALTER DATABASE\\) needs its owner or a superuser: ALTER DATABASE "image_crawler_primary" OWNER TO "dr"; ' +
        'ending the sessions of "app" needs GRANT pg_signal_backend TO "dr"',
    );
    assert.match(run.stderr, why, show(run));
    await assertRefusedAndNothingChanged(why);
  });

  test('with both databases owned and pg_signal_backend granted: the switchover succeeds', async () => {
    await server.query(`ALTER DATABASE ${PRIMARY_DB} OWNER TO dr`);
    await server.query('GRANT pg_signal_backend TO dr');
    const run = await cli(['failover', 'secondary1', '--reason', '维护升级']);
    assert.equal(run.code, 0, show(run));
    await assert.rejects(app.query('SELECT 1'), 'the application\'s session of the old primary was ended');
    assert.equal(await tryInsert(server, 1000, PRIMARY_DB), '25006', 'the old primary refuses writes');
    assert.equal(await tryInsert(server, 1000, BACKUP_DB), 'ok');
    const [{ n }] = (await server.query<{ n: number }>('SELECT count(*)::int AS n FROM items', [], BACKUP_DB)) as [{ n: number }];
    assert.equal(n, nextId, 'every row the application wrote is on the new primary');
  });
});
