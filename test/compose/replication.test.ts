/**
 * The PostgreSQL scripts of docker-compose.yml, run against real servers (no
 * Docker engine here): the primary's first-start script creates the
 * `replicator` role and its pg_hba line; the standby's script, with the
 * compose host name replaced by 127.0.0.1, makes a base backup that starts as
 * a standby and streams what the primary writes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parse } from 'yaml';
import { fromRoot } from '../support/paths.js';
import { freePort, pgBinDir, startPostgres, type PgServer } from '../support/postgres.js';

const SUPERUSER_PASSWORD = 'superSecret1';
const REPLICATION_PASSWORD = 'replSecret2';

interface Service {
  command: string[];
}

/** A service's script as the container's shell gets it: compose's `$$` is a `$`. */
function script(service: string): string {
  const compose = parse(fs.readFileSync(fromRoot('docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
  return compose.services[service]!.command.join('\n').replaceAll('$$', '$');
}

/** uid/gid of `postgres` when we are root (the server and its tools refuse root). */
function postgresIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function bash(code: string, env: Record<string, string>, asPostgres = false): Promise<{ code: number | null; output: string }> {
  const child = spawn('bash', ['-ec', code], {
    env: { ...process.env, PATH: `${pgBinDir()}:${process.env.PATH}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asPostgres ? postgresIds() : {}),
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('docker-compose.yml: the standby replicates from the primary', { timeout: 120_000 }, () => {
  let primary: PgServer | undefined;
  let root: string | undefined;
  let standbyPort = 0;
  let standbyStarted = false;
  const dataDir = () => path.join(root!, 'data');
  const sockDir = () => path.join(root!, 'sock');
  const pgCtl = (args: string[]) => bash(`pg_ctl ${args.map((a) => `'${a}'`).join(' ')}`, {}, true);

  before(async () => {
    // TCP needs a password except for the harness's own replication line: the scripts' lines are the ones that count.
    primary = await startPostgres({ passwordAuth: true });
    await primary.query(`ALTER ROLE postgres PASSWORD '${SUPERUSER_PASSWORD}'`);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-compose-standby-'));
    fs.chmodSync(root, 0o755);
    fs.mkdirSync(sockDir());
    const ids = postgresIds();
    if (ids) fs.chownSync(sockDir(), ids.uid, ids.gid);
    standbyPort = await freePort();
  });

  after(async () => {
    if (standbyStarted) await pgCtl(['stop', '-D', dataDir(), '-m', 'immediate', '-w']);
    if (root) fs.rmSync(root, { recursive: true, force: true });
    await primary?.destroy();
  });

  test('the primary\'s first-start script creates the replication role and lets it connect', async () => {
    const primaryScript = script('postgres-primary');
    const init = /<<'INIT'\n([\s\S]*?)\nINIT\n/.exec(primaryScript)?.[1];
    assert.ok(init, 'no INIT heredoc in the postgres-primary command');
    // As docker-entrypoint.sh sources it: POSTGRES_USER, PGDATA and the compose environment set.
    const r = await bash(init, {
      POSTGRES_USER: 'postgres',
      REPLICATION_PASSWORD,
      PGDATA: primary!.dataDir,
      PGHOST: '127.0.0.1',
      PGPORT: String(primary!.port),
      PGPASSWORD: SUPERUSER_PASSWORD,
    });
    assert.equal(r.code, 0, r.output);
    await primary!.query('SELECT pg_reload_conf()');
    const [role] = await primary!.query<{ rolreplication: boolean }>("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'");
    assert.equal(role?.rolreplication, true);
  });

  test('a wrong replication password is refused', async () => {
    const wrong = path.join(sockDir(), 'wrong'); // writable by postgres: only the password can fail
    const r = await bash(`pg_basebackup --host=127.0.0.1 --username=replicator --pgdata='${wrong}' --wal-method=stream --no-password`, {
      PGPORT: String(primary!.port),
      PGPASSWORD: 'not-the-password',
    }, true);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /password authentication failed/);
  });

  test('the standby\'s script makes a base backup that starts as a streaming standby', async () => {
    const standbyScript = script('postgres-standby');
    const setup = standbyScript.split('\n').filter((line) => !line.startsWith('exec docker-entrypoint.sh')).join('\n');
    assert.match(setup, /pg_basebackup/);
    const asRoot = postgresIds() !== undefined;
    const runnable = setup
      .replaceAll('postgres-primary', '127.0.0.1')
      .replaceAll('gosu postgres ', asRoot ? 'runuser -u postgres -- ' : '')
      .replace(/^\s*chown .*$/m, (line) => (asRoot ? line : ''));
    const r = await bash(runnable, { PGDATA: dataDir(), PGPASSWORD: REPLICATION_PASSWORD, PGPORT: String(primary!.port) });
    assert.equal(r.code, 0, r.output);
    assert.ok(fs.existsSync(path.join(dataDir(), 'standby.signal')), 'no standby.signal: --write-recovery-conf is missing');

    const options = `-p ${standbyPort} -k ${sockDir()} -c listen_addresses=127.0.0.1 -c hot_standby=on`;
    const start = await pgCtl(['start', '-D', dataDir(), '-l', path.join(sockDir(), 'standby.log'), '-w', '-t', '60', '-o', options]);
    standbyStarted = start.code === 0;
    assert.equal(start.code, 0, start.output);

    await primary!.query('CREATE TABLE replicated (id integer PRIMARY KEY)');
    await primary!.query('INSERT INTO replicated VALUES (1), (2), (3)');
    const standby = new pg.Client({ host: sockDir(), port: standbyPort, user: 'postgres', database: 'postgres' });
    await standby.connect();
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await standby.query<{ rec: boolean; status: string | null; n: number | null }>(
          `SELECT pg_is_in_recovery() AS rec, (SELECT status FROM pg_stat_wal_receiver) AS status,
                  (SELECT count(*)::int FROM pg_class WHERE relname = 'replicated') AS n`,
        );
        const row = rows[0]!;
        if (row.rec && row.status === 'streaming' && row.n === 1) {
          const { rows: ids } = await standby.query<{ id: number }>('SELECT id FROM replicated ORDER BY id');
          if (ids.length === 3) break;
        }
        if (Date.now() > deadline) assert.fail(`standby not streaming the primary's writes: ${JSON.stringify(row)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await standby.end();
    }
  });
});
