/**
 * Backups as a user meets them: `backup`, `restore`, `verify` run as the real
 * CLI, the sidecar's schedule and `POST /api/backup`, a backup killed with
 * SIGKILL, real SQLite files and real PostgreSQL servers.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { CLI_BIN, cliEnv, createDemoSandbox, eventually, freePort, logLines, stackLines, type CliResult, type Sandbox } from '../support/cli.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { countImages } from '../support/sqlite.js';
import { requireTool } from '../support/tools.js';
import { corruptOneByte, filesIn } from '../backup/fixtures.js';
import { appUrl, createAppRole, createShop, fingerprint } from '../backup/pg-shop.js';

const TOKEN = 'backup-e2e-token-7d2a';
const show = (r: CliResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const backupFiles = (sandbox: Sandbox, db = 'primary') => filesIn(sandbox.path(`backups/${db}`)).filter((f) => !f.startsWith('.') && !f.endsWith('.manifest.json'));

function assertExit(r: CliResult, code: number): void {
  assert.equal(r.code, code, show(r));
  assert.deepEqual(stackLines(r.stderr), [], `stack trace on stderr:\n${r.stderr}`);
}

/** The demo sandbox (SQLite primary and secondary1) with the schedule off unless asked. */
function sandboxWith(t: { after(fn: () => void): void }, port: number, backup: Record<string, unknown> = {}): Sandbox {
  const { sandbox, doc } = createDemoSandbox(t, port, 200);
  doc.disaster_recovery.backup = { ...doc.disaster_recovery.backup, enable_auto_backup: false, ...backup };
  doc.server.auth_token = '${DR_AUTH_TOKEN:-}';
  sandbox.writeConfig(doc);
  return sandbox;
}

describe('backup, restore, verify (CLI, SQLite)', () => {
  test('backup --name prints where it went, size, checksum and duration; bad names and databases are refused', async (t) => {
    const sandbox = sandboxWith(t, await freePort());
    const r = await sandbox.run(['backup', '--name', 'before_upgrade', '--config', 'config.yaml']);
    assertExit(r, 0);
    const file = /^backup of primary: (\S+)$/m.exec(r.stdout)?.[1];
    assert.ok(file && file.startsWith(sandbox.path('backups/primary/before_upgrade_')) && file.endsWith('.db.gz'), show(r));
    assert.match(r.stdout, /^ {2}size {6}\d+(\.\d)? KiB \(\d+ bytes, gzip level 6; database .*\)$/m);
    assert.match(r.stdout, new RegExp(`^  sha256    ${sha256(file)}$`, 'm'));
    assert.match(r.stdout, /^ {2}duration {2}[\d.]+ (ms|s)$/m);
    assert.match(r.stdout, /^ {2}rows {6}images 200$/m);

    const json = await sandbox.run(['backup', '--database', 'secondary1', '--json', '--config', 'config.yaml']);
    assertExit(json, 0);
    const manifest = JSON.parse(json.stdout);
    assert.equal(manifest.database, 'secondary1');
    assert.equal(manifest.sha256, sha256(manifest.path));

    for (const [args, message] of [
      [['--name', '../escape'], /invalid backup name "\.\.\/escape"/],
      [['--name', 'a/b'], /invalid backup name/],
      [['--database', 'nope'], /unknown database "nope".*enabled databases: primary, secondary1/],
      [['--database', 'secondary2'], /unknown database "secondary2" \(it is disabled\)/],
    ] as const) {
      const bad = await sandbox.run(['backup', ...args, '--config', 'config.yaml']);
      assertExit(bad, 2);
      assert.match(bad.stderr, message);
    }
    assert.deepEqual(filesIn(sandbox.path('backups')), ['primary', 'secondary1']);
  });

  test('restore: refused without a terminal unless --yes; with --yes the rows come back and the old contents are saved', async (t) => {
    const sandbox = sandboxWith(t, await freePort());
    const made = await sandbox.run(['backup', '--json', '--config', 'config.yaml']);
    assertExit(made, 0);
    const file = JSON.parse(made.stdout).path as string;
    const live = sandbox.path('data/images_primary.db');
    const db = new Database(live);
    db.exec('DELETE FROM images WHERE id > 50');
    db.close();

    const refused = await sandbox.run(['restore', file, '--config', 'config.yaml']);
    assertExit(refused, 2);
    assert.match(refused.stderr, /restore would overwrite database primary; there is no terminal to confirm on, so pass --yes/);
    assert.equal(countImages(live), 50);

    const restored = await sandbox.run(['restore', file, '--yes', '--config', 'config.yaml']);
    assertExit(restored, 0);
    assert.match(restored.stdout, new RegExp(`^restored ${file} over primary in `, 'm'));
    const saved = /previous contents saved to (\S+)/.exec(restored.stdout)?.[1];
    assert.ok(saved && fs.existsSync(saved), show(restored));
    assert.equal(countImages(live), 200);

    const outside = sandbox.path('elsewhere/copy.db.gz');
    fs.mkdirSync(path.dirname(outside));
    fs.copyFileSync(file, outside);
    fs.copyFileSync(`${file}.manifest.json`, `${outside}.manifest.json`);
    const away = await sandbox.run(['restore', outside, '--yes', '--config', 'config.yaml']);
    assertExit(away, 2);
    assert.match(away.stderr, /outside backup_dir .*pass --allow-outside-backup-dir/);
    const manifest = JSON.parse(fs.readFileSync(`${outside}.manifest.json`, 'utf8'));
    fs.writeFileSync(`${outside}.manifest.json`, JSON.stringify({ ...manifest, file: 'copy.db.gz' }));
    assertExit(await sandbox.run(['restore', outside, '--yes', '--allow-outside-backup-dir', '--config', 'config.yaml']), 0);
  });

  test('verify: every backup restores; one corrupt byte makes it exit 1 naming that backup, and restore refuses it', async (t) => {
    const sandbox = sandboxWith(t, await freePort());
    const files: string[] = [];
    for (const name of ['one', 'two']) files.push(JSON.parse((await sandbox.run(['backup', '--name', name, '--json', '--config', 'config.yaml'])).stdout).path);
    const ok = await sandbox.run(['verify', '--config', 'config.yaml']);
    assertExit(ok, 0);
    assert.match(ok.stdout, /2 backup\(s\) checked, 0 bad/);
    for (const f of files) assert.match(ok.stdout, new RegExp(`^ok +${f} +sha256 ok, integrity_check ok, 1 table\\(s\\), 200 row\\(s\\) as recorded`, 'm'));

    corruptOneByte(files[1]!);
    const live = sandbox.path('data/images_primary.db');
    const before = sha256(live);
    const bad = await sandbox.run(['verify', '--config', 'config.yaml']);
    assertExit(bad, 1);
    assert.match(bad.stdout, new RegExp(`^BAD +${files[1]} +checksum mismatch`, 'm'));
    assert.match(bad.stderr, new RegExp(`error: 1 backup\\(s\\) failed verification:\\n  - ${files[1]}: checksum mismatch`));
    const one = await sandbox.run(['verify', files[0]!, '--config', 'config.yaml']);
    assertExit(one, 0);

    const refused = await sandbox.run(['restore', files[1]!, '--yes', '--config', 'config.yaml']);
    assertExit(refused, 1);
    assert.match(refused.stderr, /refusing to restore .*failed verification/);
    assert.equal(sha256(live), before);
  });

  test('on a terminal: restore asks and does nothing unless told yes; a long backup shows its progress', async (t) => {
    const script = requireTool('script', 'apt-get install -y bsdutils');
    const sandbox = sandboxWith(t, await freePort());
    const live = sandbox.path('data/images_primary.db');
    const db = new Database(live);
    db.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60000)
             INSERT INTO images (url, source_page) SELECT 'https://big.example/' || x, hex(randomblob(1200)) FROM c`);
    db.close();
    // `script` runs the command on a pseudo-terminal, as a user's shell would; stdin answers the prompt.
    const onTerminal = (args: string, answer: string) =>
      spawnSync(script, ['-qec', `${process.execPath} ${CLI_BIN} ${args} --config config.yaml`, '/dev/null'], {
        cwd: sandbox.dir,
        env: cliEnv(),
        input: answer,
        encoding: 'utf8',
        timeout: 60_000,
      });
    const made = onTerminal('backup', '');
    assert.equal(made.status, 0, made.stdout);
    assert.match(made.stdout, /backup: (taking a consistent copy|compressing and writing) +\d+%/, 'a progress line');
    // On the terminal the result follows the progress line, which was cleared with "\r ESC[K".
    assert.match(made.stdout, /backup of primary: \S+\.db\.gz/);

    // The prompt, on the small secondary1.
    const small = onTerminal('backup --database secondary1', '');
    const file = /backup of secondary1: (\S+)/.exec(small.stdout)?.[1];
    assert.ok(file, small.stdout);
    const target = sandbox.path('data/images_secondary1.db');
    const before = sha256(target);
    const no = onTerminal(`restore ${file} --database secondary1`, 'n\n');
    assert.equal(no.status, 1, no.stdout);
    assert.match(no.stdout, /over database secondary1: .*images_secondary1\.db[\s\S]*Proceed\? \[y\/N\]/);
    assert.match(no.stdout, /restore cancelled; nothing was changed/);
    assert.equal(sha256(target), before);
    assert.equal(backupFiles(sandbox, 'secondary1').length, 1, 'not even a safety backup');

    const yes = onTerminal(`restore ${file} --database secondary1`, 'y\n');
    assert.equal(yes.status, 0, yes.stdout);
    assert.match(yes.stdout, /restored .* over secondary1 in /);
  });

  test('SIGKILL mid-backup of a large database: no good-looking file; the next start and the next backup clean up', async (t) => {
    const port = await freePort();
    const sandbox = sandboxWith(t, port);
    const live = sandbox.path('data/images_primary.db');
    const db = new Database(live);
    db.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 25000)
             INSERT INTO images (url, source_page) SELECT 'https://big.example/' || x, hex(randomblob(1200)) FROM c`);
    db.close();

    const child = spawn(process.execPath, [CLI_BIN, 'backup', '--config', 'config.yaml'], { cwd: sandbox.dir, env: cliEnv(), stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    const folder = sandbox.path('backups/primary');
    const writing = () => filesIn(folder).filter((f) => /^\..*\.db\.gz\.tmp-\d+-\d+$/.test(f) && fs.statSync(path.join(folder, f)).size > 1_000_000);
    await eventually('the backup to be writing its file', 60_000, async () => writing().length > 0);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    const left = filesIn(folder);
    assert.ok(left.length > 0 && left.every((f) => f.startsWith('.')), `only hidden temporary files may be left: ${left.join(', ')}`);
    const verify = await sandbox.run(['verify', '--config', 'config.yaml']);
    assertExit(verify, 0);
    assert.match(verify.stdout, /no backups under/);

    const monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
    await eventually('leftovers removed at start', 10_000, async () => filesIn(folder).length === 0);
    const stopped = await monitor.stop();
    const lines = logLines(stopped.stdout).filter((l) => String(l.msg ?? '').includes('leftovers'));
    assert.equal(lines.length, 1, stopped.stdout);
    assert.match(String(lines[0]!.msg), /backup leftovers of an interrupted backup removed/);

    fs.writeFileSync(path.join(folder, `.x.db.gz.tmp-${child.pid}-${Date.now() - 1000}`), 'partial');
    const again = await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 120_000 });
    assertExit(again, 0);
    const files = filesIn(folder);
    assert.equal(files.length, 2, files.join(', '));
    assert.ok(files.every((f) => !f.startsWith('.')));
  });
});

describe('the sidecar: schedule, POST /api/backup, metrics, status, logs', () => {
  test('scheduled backups every backup_interval, pruned to max_backups; the API answers with the manifest', async (t) => {
    const port = await freePort();
    const sandbox = sandboxWith(t, port, { enable_auto_backup: true, backup_interval: 1, max_backups: 2 });
    const monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env: { DR_AUTH_TOKEN: TOKEN } });
    let stopped = false;
    t.after(async () => {
      if (!stopped) await monitor.stop().catch(() => undefined);
    });
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const metric = async (series: string) => {
      const text = await (await fetch(`${monitor.url}/metrics`)).text();
      return Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? NaN);
    };
    await eventually('three scheduled backups', 20_000, async () => (await metric('dr_backups_total{database="primary",result="success"}')) >= 3);
    assert.ok(backupFiles(sandbox).length <= 2, backupFiles(sandbox).join(', '));

    const post = await fetch(`${monitor.url}/api/backup`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'from_api', database: 'secondary1' }) });
    assert.equal(post.status, 201);
    const manifest = (await post.json()) as { path: string; sha256: string; database: string; trigger: string };
    assert.equal(manifest.database, 'secondary1');
    assert.equal(manifest.trigger, 'api');
    assert.equal(manifest.sha256, sha256(manifest.path));

    const unauthorized = await fetch(`${monitor.url}/api/backup`, { method: 'POST' });
    assert.equal(unauthorized.status, 401);
    const badName = await fetch(`${monitor.url}/api/backup`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{"name":"../x"}' });
    assert.equal(badName.status, 400);
    assert.match(((await badName.json()) as { error: string }).error, /invalid backup name/);

    const status = (await (await fetch(`${monitor.url}/api/status`, { headers: auth })).json()) as { last_backup: { path: string; database: string } | null };
    assert.equal(status.last_backup?.path, manifest.path);
    assert.ok((await metric('dr_backup_last_success_timestamp_seconds{database="secondary1"}')) > Date.now() / 1000 - 60);
    assert.ok((await metric('dr_backup_size_bytes{database="primary"}')) > 0);

    stopped = true;
    const out = await monitor.stop();
    const backupLines = logLines(out.stdout).filter((l) => /backup/i.test(JSON.stringify(l)) && l.database !== undefined);
    assert.ok(backupLines.length >= 4, out.stdout);
    for (const line of backupLines) assert.match(String(line.msg), /backup/, JSON.stringify(line));
    const status2 = await sandbox.run(['status', '--config', 'config.yaml']);
    assert.match(status2.stdout, /^Last backup: +\S+ {2}secondary1 {2}\S+from_api_\S+ {2}[\d.]+ KiB {2}\(not verified yet\)$/m);
  });
});

describe('PostgreSQL through the CLI', () => {
  let server: PgServer;
  let fresh: PgServer;
  before(async () => {
    [server, fresh] = await Promise.all([startPostgres({ passwordAuth: true }), startPostgres({ passwordAuth: true })]);
    await Promise.all([createAppRole(server), createAppRole(fresh)]);
    await createShop(server, 'shop');
    await fresh.query('CREATE DATABASE shop OWNER app');
  });
  after(async () => {
    await Promise.all([server?.destroy(), fresh?.destroy()]);
  });

  test('backup, verify, and `restore --database` into a fresh server: contents equal', async (t) => {
    const { sandbox, doc } = createDemoSandbox(t, await freePort());
    doc.disaster_recovery.databases = {
      primary: { name: 'primary', type: 'primary', priority: 0, url: appUrl(server, 'shop') },
      fresh: { name: 'fresh', type: 'secondary', priority: 1, url: appUrl(fresh, 'shop') },
    };
    doc.disaster_recovery.backup = { backup_dir: 'backups', enable_auto_backup: false };
    sandbox.writeConfig(doc);
    const made = await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 60_000 });
    assertExit(made, 0);
    const file = /^backup of primary: (\S+\.dump\.gz)$/m.exec(made.stdout)?.[1];
    assert.ok(file, show(made));
    const verify = await sandbox.run(['verify', '--config', 'config.yaml'], { timeoutMs: 60_000 });
    assertExit(verify, 0);
    assert.match(verify.stdout, /restored into scratch database dr_verify_\w+ .*4 table\(s\)/);
    const restored = await sandbox.run(['restore', file, '--database', 'fresh', '--yes', '--config', 'config.yaml'], { timeoutMs: 60_000 });
    assertExit(restored, 0);
    assert.deepEqual(await fingerprint(fresh, 'shop'), await fingerprint(server, 'shop'));
    for (const r of [made, verify, restored]) assert.equal(`${r.stdout}${r.stderr}`.includes('s3cret'), false);
  });
});
