/**
 * `restore --no-manifest`: the guide's `restore backups/backup_20231201.sql.gz`
 * of a dump made elsewhere, through the real CLI, over a real PostgreSQL server
 * and real SQLite files. A plain SQL dump runs in one transaction: a failing
 * file, or one cut short, leaves the database as it was and says why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { createDemoSandbox, freePort, stackLines, type CliResult, type Sandbox } from '../support/cli.js';
import { pgBinDir, startPostgres, type PgServer } from '../support/postgres.js';
import { countImages } from '../support/sqlite.js';
import { filesIn } from './fixtures.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function assertExit(r: CliResult, code: number): void {
  assert.equal(r.code, code, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
}

/** The one `error:` line of a refused command. */
function refusal(r: CliResult, code: number): string {
  assertExit(r, code);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr:\n${r.stderr}`);
  return lines[0]!;
}

const safetyBackups = (sandbox: Sandbox, database: string) =>
  filesIn(sandbox.path(`backups/${database}`)).filter((f) => f.startsWith('pre-restore_') && !f.endsWith('.manifest.json'));

describe('restore --no-manifest, PostgreSQL', () => {
  let server: PgServer;
  before(async () => {
    server = await startPostgres();
    await server.createDatabase('crawler');
    await server.query('CREATE TABLE images (id int PRIMARY KEY, url text NOT NULL)', [], 'crawler');
    await server.query("INSERT INTO images SELECT i, 'https://example.com/' || i || '.jpg' FROM generate_series(1, 50) i", [], 'crawler');
  });
  after(async () => {
    await server?.destroy();
  });

  /** `pg_dump [args] crawler [| gzip] > file`, as an operator makes a dump elsewhere. */
  function pgDump(file: string, args: string[], gzip: boolean): string {
    const dump = spawnSync(path.join(pgBinDir(), 'pg_dump'), ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', ...args, 'crawler'], { maxBuffer: 1 << 26 });
    assert.equal(dump.status, 0, dump.stderr.toString());
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, gzip ? zlib.gzipSync(dump.stdout) : dump.stdout);
    return file;
  }

  /** A sandbox whose primary is the database `target` (its own rows: 3), on the shared server. */
  async function sandboxOver(t: { after(fn: () => void): void }, target: string, withTable = true): Promise<Sandbox> {
    await server.createDatabase(target);
    if (withTable) {
      await server.query('CREATE TABLE images (id int PRIMARY KEY, url text NOT NULL)', [], target);
      await server.query("INSERT INTO images VALUES (901, 'mine-1'), (902, 'mine-2'), (903, 'mine-3')", [], target);
    }
    const { sandbox, doc } = createDemoSandbox(t, await freePort());
    doc.disaster_recovery.databases = { primary: { name: 'primary', type: 'primary', priority: 0, url: server.url({ database: target }) } };
    doc.disaster_recovery.backup = { backup_dir: 'backups', enable_auto_backup: false };
    sandbox.writeConfig(doc);
    fs.mkdirSync(sandbox.path('backups'));
    return sandbox;
  }

  const ids = async (database: string) =>
    (await server.query<{ id: number }>('SELECT id FROM images ORDER BY id', [], database)).map((r) => r.id);
  const restore = (sandbox: Sandbox, ...args: string[]) => sandbox.run(['restore', ...args, '--yes', '--config', 'config.yaml'], { timeoutMs: 60_000 });

  test('the guide\'s example: a `pg_dump | gzip` file, refused without the flag, restored with it; a safety backup first', async (t) => {
    const sandbox = await sandboxOver(t, 'guide_target', false);
    const file = pgDump(sandbox.path('backups/backup_20231201.sql.gz'), [], true);
    const before = await restore(sandbox, 'backups/backup_20231201.sql.gz');
    assert.match(refusal(before, 1), /no manifest beside it .*restored with --no-manifest$/);

    const r = await restore(sandbox, 'backups/backup_20231201.sql.gz', '--no-manifest');
    assertExit(r, 0);
    assert.match(r.stdout, new RegExp(`^restored ${file} over primary in `, 'm'));
    assert.match(r.stdout, /^ {2}previous contents saved to \S+\/backups\/primary\/pre-restore_\S+\.dump\.gz$/m);
    assert.match(r.stdout, /^ {2}afterwards: tables readable; public\.images 50$/m);
    assert.equal(safetyBackups(sandbox, 'primary').length, 1);
    assert.deepEqual(await ids('guide_target'), Array.from({ length: 50 }, (_, i) => i + 1));
  });

  test('a dump made with --clean --if-exists replaces what the database holds; a custom archive too', async (t) => {
    const sandbox = await sandboxOver(t, 'clean_target');
    pgDump(sandbox.path('backups/clean.sql'), ['--clean', '--if-exists'], false);
    assertExit(await restore(sandbox, 'backups/clean.sql', '--no-manifest'), 0);
    assert.deepEqual((await ids('clean_target')).length, 50);
    assert.equal(safetyBackups(sandbox, 'primary').length, 1, 'what it held (rows 901..903) was saved first');

    await server.query("INSERT INTO images VALUES (904, 'after')", [], 'clean_target');
    pgDump(sandbox.path('elsewhere/crawler.dump'), ['--format=custom'], false);
    const custom = await restore(sandbox, 'elsewhere/crawler.dump', '--no-manifest');
    assert.match(refusal(custom, 2), /is outside backup_dir/);
    assertExit(await restore(sandbox, 'elsewhere/crawler.dump', '--no-manifest', '--allow-outside-backup-dir'), 0);
    assert.deepEqual((await ids('clean_target')).length, 50, 'row 904 is gone: the archive replaced the table');
  });

  test('a failing SQL file leaves the database as it was and says the psql error line', async (t) => {
    const sandbox = await sandboxOver(t, 'broken_target');
    const before = await ids('broken_target');

    fs.writeFileSync(sandbox.path('backups/broken.sql'), "INSERT INTO images VALUES (1000, 'first');\nDELETE FROM images WHERE id = 901;\nINSRT INTO images VALUES (1001, 'typo');\n");
    const broken = refusal(await restore(sandbox, 'backups/broken.sql', '--no-manifest'), 1);
    assert.match(broken, /failed and was rolled back: line 3: ERROR: {2}syntax error at or near "INSRT"/);
    assert.match(broken, /its contents before were saved to \S+pre-restore_\S+\.dump\.gz\)$/);
    assert.deepEqual(await ids('broken_target'), before);

    // A plain dump without --clean over a database that has its tables: refused by PostgreSQL, nothing half-done.
    pgDump(sandbox.path('backups/plain.sql.gz'), [], true);
    const exists = refusal(await restore(sandbox, 'backups/plain.sql.gz', '--no-manifest'), 1);
    assert.match(exists, /line \d+: ERROR: {2}relation "images" already exists/);
    assert.deepEqual(await ids('broken_target'), before);

    // A gzip file cut short: stopped before its end reached psql, rolled back.
    pgDump(sandbox.path('backups/clean.sql.gz'), ['--clean', '--if-exists'], true);
    const clean = fs.readFileSync(sandbox.path('backups/clean.sql.gz'));
    fs.writeFileSync(sandbox.path('backups/cut.sql.gz'), clean.subarray(0, Math.floor(clean.length * 0.9)));
    const cut = refusal(await restore(sandbox, 'backups/cut.sql.gz', '--no-manifest'), 1);
    assert.match(cut, /was stopped and rolled back: .*gzip/);
    assert.deepEqual(await ids('broken_target'), before);

    // A manifest beside it: the flag would skip its checksum, so it is refused.
    const made = await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 60_000 });
    assertExit(made, 0);
    const catalogued = /^backup of primary: (\S+)$/m.exec(made.stdout)![1]!;
    assert.match(refusal(await restore(sandbox, catalogued, '--no-manifest'), 2), /has a manifest beside it: restore it without --no-manifest/);
  });
});

describe('restore --no-manifest, SQLite', () => {
  test('a SQLite file copied from elsewhere (gzipped) restores with the flag; other kinds are refused', async (t) => {
    const { sandbox } = createDemoSandbox(t, await freePort(), 25);
    const elsewhere = sandbox.writeSqlite('elsewhere/images.db', 70);
    fs.mkdirSync(sandbox.path('backups'));
    fs.writeFileSync(sandbox.path('backups/images_20231201.db.gz'), zlib.gzipSync(fs.readFileSync(elsewhere)));
    const run = (...args: string[]) => sandbox.run(['restore', ...args, '--yes', '--config', 'config.yaml'], { timeoutMs: 30_000 });

    const r = await run('backups/images_20231201.db.gz', '--no-manifest');
    assertExit(r, 0);
    assert.match(r.stdout, /^ {2}afterwards: quick_check ok; images 70$/m);
    assert.equal(countImages(sandbox.path('data/images_primary.db')), 70);
    assert.equal(safetyBackups(sandbox, 'primary').length, 1);

    fs.writeFileSync(sandbox.path('backups/notes.db'), 'not a database at all\n');
    assert.match(refusal(await run('backups/notes.db', '--no-manifest'), 2), /cannot tell what \S+notes\.db holds/);
    fs.writeFileSync(sandbox.path('backups/dump.sql'), 'CREATE TABLE x (id int);\n');
    assert.match(refusal(await run('backups/dump.sql', '--no-manifest'), 1), /it is a PostgreSQL plain SQL dump \(psql\), and primary is a sqlite database$/);
    assert.equal(countImages(sandbox.path('data/images_primary.db')), 70);
  });
});
