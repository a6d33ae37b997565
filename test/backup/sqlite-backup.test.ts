import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ConflictError, DrError } from '../../src/errors.js';
import { countImages, insertImages, makeImagesDb, tempDir } from '../support/sqlite.js';
import { requireTool } from '../support/tools.js';
import { backupsFor, corruptOneByte, filesIn, sha256Of, startSqliteWriter } from './fixtures.js';

/** What the `sqlite3` CLI answers about a database file: an independent reader. */
function sqlite3(file: string, sql: string): string {
  return execFileSync(requireTool('sqlite3', 'apt-get install -y sqlite3'), [file, sql], { encoding: 'utf8' }).trim();
}

function gunzipTo(file: string, out: string): void {
  fs.writeFileSync(out, execFileSync(requireTool('gunzip', 'apt-get install -y gzip'), ['-c', file], { maxBuffer: 1 << 30 }));
}

describe('SQLite backups', () => {
  let dir: string;
  let cleanup: () => void;
  let live: string;

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('dr-sqlite-backup-'));
    live = path.join(dir, 'data', 'images.db');
  });
  afterEach(() => cleanup());

  test('while a writer inserts: one consistent snapshot that gunzip and sqlite3 read, with the row count of its moment', async () => {
    makeImagesDb(live, 150_000);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    const writer = startSqliteWriter(live);
    try {
      const before = countImages(live);
      for (let i = 0; i < 100 && countImages(live) === before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(countImages(live) > before, 'the writer is inserting');
      const record = await backups.create({ name: 'under_load' });
      await new Promise((r) => setTimeout(r, 100));
      await writer.stop();

      const copy = path.join(dir, 'restored.db');
      gunzipTo(record.path, copy);
      assert.equal(sqlite3(copy, 'PRAGMA integrity_check;'), 'ok');
      const [count, maxId, newest] = sqlite3(copy, 'SELECT count(*), max(id), max(created_at) FROM images;').split('|');
      assert.equal(Number(count), record.tables!.images, 'rows in the file = rows the manifest recorded');
      assert.equal(Number(count), Number(maxId), 'no row missing inside the snapshot: ids 1..N');
      assert.ok(newest! <= record.created_at, `newest row ${newest} not after the snapshot ${record.created_at}`);
      const liveRows = countImages(live);
      assert.ok(liveRows > Number(count), `the writer went on (${liveRows} rows live, ${count} in the backup)`);
      const during = sqlite3(live, `SELECT count(*) FROM images WHERE created_at > '${record.created_at}' AND created_at < '${record.finished_at}';`);
      assert.ok(Number(during) > 0, 'rows were committed while the backup ran: writers were not blocked');
      assert.equal(record.compression, 'gzip');
      assert.match(path.basename(record.path), /^under_load_\d{8}T\d{6}Z\.db\.gz$/);
      assert.deepEqual(filesIn(path.dirname(record.path)), [path.basename(record.path), `${path.basename(record.path)}.manifest.json`]);
    } finally {
      await writer.stop();
    }
  });

  test('restore over a changed database brings the rows back; a connection the application holds sees them', async () => {
    makeImagesDb(live, 500);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    const record = await backups.create();
    const app = new Database(live);
    try {
      app.exec('DELETE FROM images WHERE id % 2 = 0');
      insertImages(app, 10, 10_000);
      const changed = (app.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n;
      assert.equal(changed, 260);

      const outcome = await backups.restore(backups.planRestore({ file: record.path }));
      assert.equal((app.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n, 500, 'the open connection sees the restore');
      assert.equal(countImages(live), 500);
      assert.equal(sqlite3(live, 'PRAGMA integrity_check;'), 'ok');
      assert.ok(outcome.safety_backup, 'what was overwritten was saved first');
      assert.equal(outcome.safety_backup.tables!.images, 260);
      assert.equal(outcome.safety_backup.trigger, 'pre-restore');
      assert.deepEqual(filesIn(path.dirname(live)).filter((f) => f.startsWith('.')), [], 'no temporary file left beside the database');
    } finally {
      app.close();
    }
  });

  test('one corrupt byte: verify names the backup, restore refuses, the live database is unchanged', async () => {
    makeImagesDb(live, 300);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    const good = await backups.create({ name: 'good' });
    const bad = await backups.create({ name: 'bad' });
    corruptOneByte(bad.path);
    const writer = new Database(live);
    insertImages(writer, 5, 50_000);
    writer.close();
    const liveBefore = sha256Of(live);

    await assert.rejects(backups.restore(backups.planRestore({ file: bad.path })), (e: Error) => e instanceof ConflictError && /checksum mismatch/.test(e.message));
    assert.equal(sha256Of(live), liveBefore, 'live database untouched');
    assert.equal(filesIn(path.dirname(bad.path)).filter((f) => f.startsWith('pre-restore')).length, 0, 'refused before any safety backup');

    const results = await backups.verify();
    const byFile = new Map(results.map((r) => [r.file, r]));
    assert.equal(byFile.get(good.path)?.ok, true, byFile.get(good.path)?.detail);
    assert.match(byFile.get(good.path)!.detail, /sha256 ok, integrity_check ok, 1 table\(s\), 300 row\(s\) as recorded/);
    assert.equal(byFile.get(bad.path)?.ok, false);
    assert.match(byFile.get(bad.path)!.detail, /checksum mismatch/);
    assert.equal(sha256Of(live), liveBefore, 'verify does not touch the live database either');

    // The failed verification is recorded: that backup no longer counts as good, and planning refuses it at once.
    assert.throws(() => backups.planRestore({ file: bad.path }), /failed verification/);
    assert.equal(backups.newestGood('primary')?.path, good.path);
  });

  test('a backup written corrupt (its checksum matches): the scratch restore catches it', async () => {
    makeImagesDb(live, 2000);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` }, { enable_compression: false });
    const record = await backups.create();
    // Damage the page-type byte of page 2 (a b-tree page), then make the manifest agree with the damaged file.
    corruptOneByte(record.path, 4096);
    const manifestPath = `${record.path}.manifest.json`;
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    fs.writeFileSync(manifestPath, JSON.stringify({ ...manifest, sha256: sha256Of(record.path) }));
    const [result] = await backups.verify(record.path);
    assert.equal(result!.ok, false);
    assert.match(result!.detail, /integrity_check failed|malformed|rows differ/);
  });

  test('without enable_compression: a plain database file that sqlite3 opens as it is', async () => {
    makeImagesDb(live, 42);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` }, { enable_compression: false });
    const record = await backups.create({ name: 'plain' });
    assert.match(record.path, /\.db$/);
    assert.equal(record.compression, 'none');
    assert.equal(sqlite3(record.path, 'SELECT count(*) FROM images;'), '42');
    assert.equal(record.sha256, sha256Of(record.path));
  });

  test('a corrupt live file is replaced whole (after --skip-safety-backup: it cannot be read to be saved)', async () => {
    makeImagesDb(live, 77);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    const record = await backups.create();
    fs.writeFileSync(live, Buffer.alloc(8192, 0x41));
    const plan = backups.planRestore({ file: record.path });
    await assert.rejects(backups.restore(plan), /cannot save the current contents of primary.*--skip-safety-backup/s);
    await backups.restore(plan, { skipSafetyBackup: true });
    assert.equal(countImages(live), 77);
  });

  test('a missing live file is simply restored', async () => {
    makeImagesDb(live, 12);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    const record = await backups.create();
    fs.rmSync(live);
    for (const side of ['-wal', '-shm']) fs.rmSync(`${live}${side}`, { force: true });
    const outcome = await backups.restore(backups.planRestore({ file: record.path }));
    assert.equal(outcome.safety_backup, null);
    assert.equal(countImages(live), 12);
  });

  test('retention runs after each backup: max_backups, and retention_days with the newest always kept', async () => {
    makeImagesDb(live, 3);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` }, { max_backups: 2, retention_days: 30 });
    const first = await backups.create({ name: 'one' });
    const second = await backups.create({ name: 'two' });
    const third = await backups.create({ name: 'three' });
    const kept = backups.list('primary').map((e) => e.path);
    assert.deepEqual(kept, [third.path, second.path]);
    assert.equal(fs.existsSync(first.path) || fs.existsSync(`${first.path}.manifest.json`), false);
    const removed = backups.prune('primary', new Date(Date.now() + 40 * 86_400_000));
    assert.deepEqual(removed.map((e) => e.path), [second.path]);
    assert.deepEqual(backups.list('primary').map((e) => e.path), [third.path]);
  });

  test('a database that is not there: a clear error, counted, nothing written', async () => {
    const { backups, outcomes } = backupsFor(dir, { primary: `sqlite:///${live}` });
    await assert.rejects(backups.create(), (e: Error) => e instanceof DrError && /backup of primary failed: database file not found: .*images\.db/.test(e.message));
    assert.deepEqual(outcomes.map((o) => o.result), ['error']);
    assert.deepEqual(filesIn(path.join(dir, 'backups', 'primary')), []);
  });

  test('restore checks: outside backup_dir only with the flag, engine must match, a file without manifest is refused', async () => {
    makeImagesDb(live, 5);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    const record = await backups.create();
    const outside = path.join(dir, 'elsewhere', path.basename(record.path));
    fs.mkdirSync(path.dirname(outside));
    fs.copyFileSync(record.path, outside);
    fs.copyFileSync(`${record.path}.manifest.json`, `${outside}.manifest.json`);
    assert.throws(() => backups.planRestore({ file: outside }), /outside backup_dir.*--allow-outside-backup-dir/);
    assert.equal(backups.planRestore({ file: outside, allowOutsideBackupDir: true }).file, outside);

    fs.rmSync(`${outside}.manifest.json`);
    assert.throws(() => backups.planRestore({ file: outside, allowOutsideBackupDir: true }), /no manifest beside it.*checksum cannot be checked/);

    const manifest = JSON.parse(fs.readFileSync(`${record.path}.manifest.json`, 'utf8'));
    fs.writeFileSync(`${record.path}.manifest.json`, JSON.stringify({ ...manifest, engine: 'postgresql', format: 'postgresql-custom' }));
    assert.throws(() => backups.planRestore({ file: record.path }), /it is a postgresql backup, and primary is a sqlite database/);
    assert.throws(() => backups.planRestore({ file: path.join(dir, 'nope.db.gz') }), /no such backup file/);
    assert.throws(() => backups.planRestore({ file: record.path, database: 'nope' }), /unknown database "nope"/);
  });
});
