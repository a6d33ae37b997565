import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { makeImagesDb, tempDir } from '../support/sqlite.js';
import { backupsFor, filesIn, mountTmpfs } from './fixtures.js';

/** Rows of incompressible text, so a backup's size is about the database's. */
function grow(file: string, bytes: number): void {
  const db = new Database(file);
  try {
    const insert = db.prepare("INSERT INTO images (url, sha256, format) VALUES (?, ?, 'jpeg')");
    const batch = randomBytes(6).toString('hex');
    db.transaction(() => {
      for (let i = 0; i * 1000 < bytes; i++) insert.run(`https://big.example/${batch}/${i}`, randomBytes(500).toString('base64'));
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

describe('backup failures: a clear error, counted, older backups untouched, nothing left behind', () => {
  let dir: string;
  let cleanup: () => void;
  let live: string;
  const unmounts: Array<() => void> = [];

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('dr-backup-fail-'));
    live = path.join(dir, 'data', 'images.db');
    makeImagesDb(live, 50);
  });
  afterEach(() => {
    for (const unmount of unmounts.splice(0)) unmount();
    cleanup();
  });

  for (const compression of [true, false]) {
    test(`disk full (a 1 MiB tmpfs), compression ${compression ? 'on' : 'off'}`, async () => {
      const backupDir = path.join(dir, 'small');
      const unmount = mountTmpfs(backupDir, 'size=1m');
      if (!unmount) assert.fail('this test needs to mount a 1 MiB tmpfs (root with CAP_SYS_ADMIN), which this machine refused');
      unmounts.push(unmount);
      const { backups, outcomes } = backupsFor(dir, { primary: `sqlite:///${live}` }, { backup_dir: backupDir, enable_compression: compression });
      const old = await backups.create({ name: 'small' });

      // Fits as a snapshot but not as snapshot + backup file: the failure comes while writing the file.
      grow(live, 600_000);
      await assert.rejects(backups.create({ name: 'big' }), /backup of primary failed: no space left on device while (copying|writing)/);
      assert.deepEqual(outcomes.map((o) => o.result), ['success', 'error']);
      const folder = path.dirname(old.path);
      assert.deepEqual(filesIn(folder), [path.basename(old.path), `${path.basename(old.path)}.manifest.json`], 'only the old backup is left');
      const [verified] = await backups.verify(old.path);
      assert.equal(verified!.ok, true, verified!.detail);

      grow(live, 3_000_000);
      await assert.rejects(backups.create({ name: 'bigger' }), /no space left on device/);
      assert.deepEqual(filesIn(folder), [path.basename(old.path), `${path.basename(old.path)}.manifest.json`]);
    });
  }

  test('backup_dir under a regular file: says which part of the path is wrong', async () => {
    fs.writeFileSync(path.join(dir, 'not-a-folder'), 'x');
    const { backups, outcomes } = backupsFor(dir, { primary: `sqlite:///${live}` }, { backup_dir: path.join(dir, 'not-a-folder', 'backups') });
    await assert.rejects(backups.create(), /backup of primary failed: a part of the path is not a folder while creating the backup folder .*not-a-folder\/backups\/primary \(ENOTDIR\)/);
    assert.deepEqual(outcomes.map((o) => o.result), ['error']);
  });

  test('a read-only backup_dir', async () => {
    const backupDir = path.join(dir, 'readonly');
    fs.mkdirSync(path.join(backupDir), { recursive: true });
    const unmount = mountTmpfs(backupDir, 'ro,size=1m');
    if (!unmount) assert.fail('this test needs to mount a 1 MiB tmpfs (root with CAP_SYS_ADMIN), which this machine refused');
    unmounts.push(unmount);
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` }, { backup_dir: backupDir });
    await assert.rejects(backups.create(), /backup of primary failed: read-only file system while creating the backup folder/);
  });

  test('a file that is not a database', async () => {
    fs.writeFileSync(live, Buffer.alloc(10_000, 0x42));
    for (const side of ['-wal', '-shm']) fs.rmSync(`${live}${side}`, { force: true });
    const { backups } = backupsFor(dir, { primary: `sqlite:///${live}` });
    await assert.rejects(backups.create(), /backup of primary failed: not a SQLite database while copying .*images\.db \(SQLITE_NOTADB\)/);
    assert.deepEqual(filesIn(path.join(dir, 'backups', 'primary')), []);
  });
});
