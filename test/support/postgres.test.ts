import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort, pgBinDir, startPostgres, startStandby, waitForReplay, type PgServer } from './postgres.js';

/** exists and is not a zombie */
function alive(pid: number): boolean {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t.slice(t.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function connect(url: string, connectionTimeoutMillis = 5000): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe('postgres test harness', () => {
  let primary: PgServer;
  let standby: PgServer | undefined;

  before(async () => {
    primary = await startPostgres();
  });
  after(async () => {
    await standby?.destroy();
    await primary?.destroy();
  });

  test('pgBinDir and freePort', async () => {
    assert.ok(existsSync(path.join(pgBinDir(), 'initdb')));
    const port = await freePort();
    assert.ok(port > 1024 && port < 65536);
  });

  test('a standby replays what the primary writes', async () => {
    await primary.createDatabase('app');
    await primary.query('CREATE TABLE t (id int PRIMARY KEY, v text)', [], 'app');
    await primary.query('INSERT INTO t VALUES (1, $1)', ['before'], 'app');
    standby = await startStandby(primary, { slotName: 'standby1' });
    await primary.query('INSERT INTO t VALUES (2, $1)', ['after'], 'app');
    await waitForReplay(primary, standby);
    const rows = await standby.query<{ id: number; v: string }>('SELECT id, v FROM t ORDER BY id', [], 'app');
    assert.deepEqual(rows, [{ id: 1, v: 'before' }, { id: 2, v: 'after' }]);
    const [rec] = await standby.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(rec?.r, true);
    const [slot] = await primary.query<{ active: boolean }>("SELECT active FROM pg_replication_slots WHERE slot_name = 'standby1'");
    assert.equal(slot?.active, true);
    assert.notEqual(standby.port, primary.port);
    assert.match(standby.url({ database: 'app' }), new RegExp(`^postgresql://postgres@127\\.0\\.0\\.1:${standby.port}/app$`));
  });

  test('pause makes connects hang, resume brings it back', async () => {
    primary.pause();
    try {
      const t0 = Date.now();
      await assert.rejects(connect(primary.url(), 1000), /timeout/i);
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      primary.resume();
    }
    await connect(primary.url(), 1000);
  });

  test('stop and start keep the port and the data', async () => {
    const port = primary.port;
    await primary.stop('fast');
    assert.equal(primary.isRunning(), false);
    await primary.start();
    assert.equal(primary.port, port);
    const [r] = await primary.query<{ n: string }>('SELECT count(*) AS n FROM t', [], 'app');
    assert.equal(r?.n, '2');
  });

  test('kill9 is a crash: connections refused, restart recovers committed rows', async () => {
    await primary.query('INSERT INTO t VALUES (3, $1)', ['committed'], 'app');
    const pid = primary.postmasterPid();
    await primary.kill9();
    assert.equal(alive(pid), false);
    assert.equal(primary.isRunning(), false);
    await assert.rejects(connect(primary.url()), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    await primary.start();
    const rows = await primary.query<{ id: number }>('SELECT id FROM t ORDER BY id', [], 'app');
    assert.deepEqual(rows.map((r) => r.id), [1, 2, 3]);
    assert.match(readFileSync(path.join(primary.dataDir, '..', 'server.log'), 'utf8'), /not properly shut down|automatic recovery/);
  });
});

describe('passwordAuth and destroy', () => {
  test('TCP needs the password, the harness still connects', async () => {
    const s = await startPostgres({ passwordAuth: true });
    try {
      await s.createUser('alice', "s3cr'et pw", true);
      await assert.rejects(connect(s.url({ user: 'alice' })));
      await assert.rejects(connect(s.url({ user: 'alice', password: 'wrong' })), /password authentication failed/);
      await connect(s.url({ user: 'alice', password: "s3cr'et pw" }));
      assert.equal((await s.query<{ one: number }>('SELECT 1 AS one'))[0]?.one, 1);
    } finally {
      await s.destroy();
    }
  });

  test('destroy stops a paused server and removes its directory', async () => {
    const s = await startPostgres();
    const pid = s.postmasterPid();
    s.pause();
    await s.destroy();
    assert.equal(existsSync(s.dataDir), false);
    assert.equal(existsSync(path.dirname(s.dataDir)), false);
    assert.equal(alive(pid), false);
  });

  test('a test process killed with SIGTERM leaves no server behind', async () => {
    const harness = new URL('./postgres.js', import.meta.url).href;
    // The child exits (and cleans up) when its stdin closes, so it cannot outlive this test process.
    const code = `import { startPostgres } from ${JSON.stringify(harness)};
      process.stdin.on('close', () => process.exit(1)); process.stdin.resume();
      const s = await startPostgres(); s.pause();
      console.log(JSON.stringify({ pid: s.postmasterPid(), dir: s.dataDir }));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      const info = await new Promise<{ pid: number; dir: string }>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(JSON.parse(out) as { pid: number; dir: string });
        });
        child.on('exit', (c) => reject(new Error(`child exited early (${c})`)));
      });
      assert.equal(alive(info.pid), true);
      child.kill('SIGTERM');
      assert.equal(await exited, 143);
      assert.equal(alive(info.pid), false);
      assert.equal(existsSync(info.dir), false);
    } finally {
      child.stdin.end();
      await exited;
    }
  });
});
