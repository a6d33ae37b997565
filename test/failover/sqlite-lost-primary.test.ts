/**
 * A SQLite primary that lost its data behind the sidecar's back (deleted and
 * recreated by the application, emptied, truncated, replaced) is a lost primary:
 * down with the reason, never copied over a secondary, failed over when automatic
 * failover is on; and `accept-file` (the real CLI) makes a file replaced on
 * purpose the database again: an intent the running sidecar (the leader) carries out.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { DatabaseStatus } from '../../src/status.js';
import { stackLines, type CliResult } from '../support/cli.js';
import { corruptHeader, imageIds, seedImages, sleep, sqliteCluster, startSidecar, waitForHistory, type Sidecar } from '../support/sqlite-cluster.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** What SQLite (and SQLAlchemy's create_all) do when the file is gone: a new empty file, and the application's table in it. */
function recreateWithTable(file: string): void {
  for (const side of ['', '-wal', '-shm']) fs.rmSync(file + side, { force: true });
  const db = new Database(file);
  db.exec('CREATE TABLE images (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL UNIQUE)');
  db.close();
}

async function until(what: string, check: () => boolean | Promise<boolean>, sidecar?: Sidecar, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${sidecar ? `\n${sidecar.logs.tail()}` : ''}`);
    await sleep(25);
  }
}

/** The sidecar has probed the primary (its identity is recorded) and copied it into secondary1 at least once. */
async function watching(sidecar: Sidecar): Promise<void> {
  await until(
    'the primary watched and copied',
    async () =>
      sidecar.service.copies.lastCopyAt('secondary1') !== undefined &&
      (await sidecar.service.store.sqliteIdentities()).some((r) => r.database === 'primary'),
    sidecar,
  );
}

test('SQLite lost primary: deleted and recreated with a table, the secondaries keep their 50 rows, auto failover promotes the best, history says why', async (t) => {
  const cluster = sqliteCluster(t, { rows: 50, secondaries: ['secondary1', 'secondary2'] });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await watching(sidecar);

  recreateWithTable(cluster.file('primary'));

  const record = await waitForHistory(sidecar.service, (r) => r.trigger === 'auto', 15_000, () => sidecar.logs.tail());
  assert.equal(record.result, 'success', JSON.stringify(record));
  assert.equal(record.from, 'primary');
  assert.equal(record.to, 'secondary1');
  assert.match(record.reason, /^primary primary failed 3 probes in a row: primary lost its data: (the file was replaced|the file was deleted and created again|its header's change counter went back)/);
  assert.equal(record.dataSync?.complete, false);
  assert.match(record.dataSync?.detail ?? '', /the old primary primary lost its data \(.*\), nothing was copied from it/);
  assert.equal(imageIds(cluster.file('secondary1')).size, 50, 'the secondary kept every row');
  assert.equal(imageIds(cluster.file('secondary2')).size, 50, 'and so did the other one');
  assert.ok(
    sidecar.logs.lines.some((l) => l.level >= 50 && /primary LOST its data/.test(l.msg) && /accept-file primary/.test(l.msg)),
    `the log says what happened and what to do:\n${sidecar.logs.tail()}`,
  );

  // Copies go on from the new primary; the lost file is demoted, never copied over anything.
  const copied = sidecar.service.copies.lastCopyAt('secondary1');
  await until('the primary answered after the switch', () => sidecar.service.monitor.health('secondary1')?.status === 'up', sidecar);
  assert.equal(imageIds(cluster.file('secondary1')).size, 50);
  assert.equal(sidecar.service.copies.lastCopyAt('secondary1'), copied, 'nothing is copied into the new primary');

  const history = await cluster.cli('history');
  assert.equal(history.code, 0, show(history));
  assert.match(history.stdout, /auto {2}primary -> secondary1 {2}SUCCESS/);
  assert.match(history.stdout, /reason: primary primary failed 3 probes in a row: primary lost its data: /);
});

test('SQLite: a 0-byte primary is down with a reason, first seen or after a sidecar (since stopped) knew it', async (t) => {
  const cluster = sqliteCluster(t, { monitoring: { probe_timeout: 5 }, failover: { enable_auto_failover: false } });
  const sidecar = await startSidecar(cluster.load());
  await until('the primary watched', async () => (await sidecar.service.store.sqliteIdentities()).some((r) => r.database === 'primary'), sidecar);
  await sidecar.stop();

  // Emptied while no sidecar runs: what was recorded is what the next process judges by.
  fs.truncateSync(cluster.file('primary'), 0);
  const emptied = await cluster.cli('test');
  assert.equal(emptied.code, 1, show(emptied));
  assert.match(emptied.stdout, /^FAIL +primary .*primary lost its data: the file was emptied \(0 pages, it had \d+\)/m, show(emptied));
  assert.deepEqual(stackLines(emptied.stderr), []);

  // Never seen before: an empty file is no database either.
  const other = sqliteCluster(t, { monitoring: { probe_timeout: 5 } });
  fs.truncateSync(other.file('primary'), 0);
  const never = await other.cli('test', '--json');
  assert.equal(never.code, 1, show(never));
  const primary = (JSON.parse(never.stdout) as DatabaseStatus[]).find((d) => d.name === 'primary');
  assert.equal(primary?.status, 'down');
  assert.match(primary?.error ?? '', /database file is empty \(0 bytes\)/);
});

test('SQLite: a primary truncated to a few pages is lost; the copies stop, a CLI probe says why', async (t) => {
  const cluster = sqliteCluster(t, { rows: 3000, failover: { enable_auto_failover: false } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await watching(sidecar);

  fs.truncateSync(cluster.file('primary'), 3 * 4096);
  await until('the primary down as lost', () => /lost its data: it shrank from \d+ to 3 pages/.test(sidecar.service.monitor.health('primary')?.last?.error ?? ''), sidecar);
  // A CLI process judges the file against the same recorded identity.
  const probed = await cluster.cli('test', '--json');
  assert.equal(probed.code, 1, show(probed));
  const primary = (JSON.parse(probed.stdout) as DatabaseStatus[]).find((d) => d.name === 'primary');
  assert.equal(primary?.status, 'down');
  assert.match(primary?.error ?? '', /primary lost its data: it shrank from \d+ to 3 pages without a write to its header/);
  assert.equal(imageIds(cluster.file('secondary1')).size, 3000, 'secondary1 was not overwritten');
});

test('SQLite: accept-file makes a primary replaced on purpose the database again; the running sidecar resumes its copies', async (t) => {
  const cluster = sqliteCluster(t, { rows: 50, failover: { enable_auto_failover: false } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await watching(sidecar);

  // The operator puts another file in place (say, a repaired copy with 70 rows).
  const replacement = cluster.sandbox.path('data/replacement.db');
  seedImages(replacement, 70);
  fs.renameSync(replacement, cluster.file('primary'));
  for (const side of ['-wal', '-shm']) fs.rmSync(cluster.file('primary') + side, { force: true });
  await until('the primary down as lost', () => sidecar.service.monitor.health('primary')?.last?.lost !== undefined, sidecar);
  assert.equal(imageIds(cluster.file('secondary1')).size, 50, 'the replaced primary was not copied');

  const unknown = await cluster.cli('accept-file', 'nope');
  assert.equal(unknown.code, 2, show(unknown));
  assert.match(unknown.stderr, /^error: unknown database "nope"/);

  const accepted = await cluster.cli('accept-file', 'primary');
  assert.equal(accepted.code, 0, show(accepted));
  assert.match(accepted.stdout, /^primary: .*primary\.db accepted as its data \(device:inode \d+:\d+, \d+ pages, change counter \d+, 1 tables\)$/m);
  assert.match(accepted.stdout, /^ {3}before: device:inode /m);
  // An intent like the other cluster-changing commands: the running sidecar (the leader) accepted it.
  assert.ok(sidecar.logs.lines.some((l) => /carrying out accept_file asked by command@/.test(String(l.msg))), sidecar.logs.tail());

  await until('the primary up again', () => sidecar.service.monitor.health('primary')?.status === 'up', sidecar);
  await until('secondary1 copied from the accepted file', () => imageIds(cluster.file('secondary1')).size === 70, sidecar);
  assert.ok(sidecar.logs.lines.some((l) => /the file of primary was accepted by an operator as its data/.test(l.msg)), sidecar.logs.tail());
});

test('SQLite: a restore by the CLI over an unreadable primary replaces its file, and that is no loss', async (t) => {
  const cluster = sqliteCluster(t, { rows: 50, failover: { enable_auto_failover: false }, monitoring: { probe_timeout: 5 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await watching(sidecar);
  const backup = await cluster.cli('backup', '--name', 'before', '--json');
  assert.equal(backup.code, 0, show(backup));
  const made = JSON.parse(backup.stdout) as { path: string };

  // The header is destroyed: the restore cannot write into the file and puts a new one (another inode) in its place.
  corruptHeader(cluster.file('primary'));
  await until('the primary down', () => /not a SQLite database/.test(sidecar.service.monitor.health('primary')?.last?.error ?? ''), sidecar);
  const restored = await cluster.cli('restore', made.path, '--database', 'primary', '--yes', '--skip-safety-backup');
  assert.equal(restored.code, 0, show(restored));
  assert.equal(imageIds(cluster.file('primary')).size, 50);
  assert.equal((await sidecar.service.store.sqliteIdentities()).find((r) => r.database === 'primary')?.source, 'restore');

  await until('the primary up again', () => sidecar.service.monitor.health('primary')?.status === 'up', sidecar);
  const probes = sidecar.service.monitor.health('primary')!.probes;
  await until('three more probes of the primary', () => sidecar.service.monitor.health('primary')!.probes >= probes + 3, sidecar);
  const health = sidecar.service.monitor.health('primary')!;
  assert.equal(health.status, 'up', health.last?.error);
  assert.ok(!sidecar.logs.lines.some((l) => /LOST/.test(l.msg)), sidecar.logs.tail());
});

test('SQLite: a primary whose quick_check fails is failed over, and nothing is copied from it', async (t) => {
  // Checks every second; a copy only every minute (none before the damage: the primary is not up at the first round).
  const cluster = sqliteCluster(t, { rows: 4000, failover: { sync_interval: 60 }, monitoring: { integrity_check_interval: 1 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await until('the primary up', () => sidecar.service.monitor.health('primary')?.status === 'up', sidecar);
  const secondaryBefore = fs.readFileSync(cluster.file('secondary1'));

  // Garbage over a page in the middle of the file: no probe reads it, quick_check does.
  const db = new Database(cluster.file('primary'));
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const fd = fs.openSync(cluster.file('primary'), 'r+');
  fs.writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, Math.floor(pages / 2) * pageSize);
  fs.closeSync(fd);

  const record = await waitForHistory(sidecar.service, (r) => r.trigger === 'auto', 20_000, () => sidecar.logs.tail());
  assert.equal(record.result, 'success', JSON.stringify(record));
  assert.equal(record.to, 'secondary1');
  assert.match(record.reason, /failed 3 probes in a row: quick_check of .*primary\.db failed: /);
  assert.doesNotMatch(record.reason, /\n/, 'one line: SQLite\'s rows are joined');
  assert.match(record.dataSync?.detail ?? '', /the old primary primary is damaged \(quick_check .*\), nothing was copied from it/);
  assert.deepEqual(fs.readFileSync(cluster.file('secondary1')), secondaryBefore, 'secondary1 holds its last good copy');
});
