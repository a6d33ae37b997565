import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { readBackupContent } from '../../src/backup/backup-file.js';
import { postgresBackup } from '../../src/backup/postgres-backup.js';
import { pgBinary } from '../../src/engines/pg-tools.js';
import { ConflictError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { tempDir } from '../support/sqlite.js';
import { requireTool } from '../support/tools.js';
import { backupsFor, corruptOneByte, type BackupFixture } from './fixtures.js';
import { APP_PASSWORD, appUrl, asApp, createAppRole, createShop, fingerprint, rowCounts } from './pg-shop.js';


describe('PostgreSQL backups', () => {
  let server: PgServer;
  let fresh: PgServer;
  let dir: string;
  let cleanup: () => void;
  let logText = '';
  let n = 0;

  /** Backups of a new `shop` database on the server (primary), and `target` on the fresh server. */
  async function shop(images = 5000): Promise<BackupFixture & { database: string; target: string }> {
    const database = `shop${++n}`;
    const target = `target${n}`;
    await createShop(server, database, images);
    await fresh.query(`CREATE DATABASE ${target} OWNER app`);
    const log = createLogger({ level: 'info', destination: new Writable({ write: (c, _e, done) => ((logText += String(c)), done()) }) });
    const fixture = backupsFor(dir, { primary: appUrl(server, database), fresh: appUrl(fresh, target) }, { backup_dir: path.join(dir, `backups${n}`) }, log);
    return { ...fixture, database, target };
  }

  before(async () => {
    [server, fresh] = await Promise.all([startPostgres({ passwordAuth: true }), startPostgres()]);
    await Promise.all([createAppRole(server), createAppRole(fresh)]);
    ({ dir, cleanup } = tempDir('dr-pg-backup-'));
  });
  after(async () => {
    await Promise.all([server?.destroy(), fresh?.destroy()]);
    cleanup?.();
  });

  test('a backup holds every table; the standard tools alone restore it on a fresh server; contents equal', async () => {
    const { backups, database } = await shop();
    const record = await backups.create({ name: 'nightly' });
    assert.match(path.basename(record.path), /^nightly_\d{8}T\d{6}Z\.dump\.gz$/);
    assert.equal(record.format, 'postgresql-custom');
    assert.deepEqual(record.tables, await rowCounts(server, database));
    assert.deepEqual(Object.keys(record.tables!), ['audit.events', 'public.image_tags', 'public.images', 'public.tags']);
    assert.equal(record.source.url.includes(APP_PASSWORD), false);
    assert.match(record.source.url, /app:\*\*\*@/);

    // A fresh server, the role re-created as a runbook would; then gunzip | pg_restore, nothing of ours.
    await fresh.query('CREATE DATABASE standalone OWNER app');
    const archive = execFileSync(requireTool('gunzip', 'apt-get install -y gzip'), ['-c', record.path], { maxBuffer: 1 << 30 });
    execFileSync(pgBinary('pg_restore'), ['--single-transaction', '--exit-on-error', '-d', fresh.url({ database: 'standalone' })], { input: archive });
    assert.deepEqual(await fingerprint(fresh, 'standalone'), await fingerprint(server, database));
  });

  test('restore over a changed database, and into an empty one on another server: contents equal the backup', async () => {
    const { backups, database, target } = await shop();
    const original = await fingerprint(server, database);
    const record = await backups.create();
    await asApp(server, database, "DELETE FROM image_tags; UPDATE images SET width = 0; INSERT INTO tags (name) VALUES ('new'); SELECT lo_unlink(oid) FROM pg_largeobject_metadata");
    const changed = await rowCounts(server, database);

    const outcome = await backups.restore(backups.planRestore({ file: record.path, database: 'primary' }));
    assert.deepEqual(await fingerprint(server, database), original);
    assert.deepEqual(outcome.safety_backup?.tables, changed, 'the changed contents were saved first');

    await backups.restore(backups.planRestore({ file: record.path, database: 'fresh' }));
    assert.deepEqual(await fingerprint(fresh, target), original);
  });

  test('verify restores into a scratch database, compares rows per table, and drops it', async () => {
    const { backups } = await shop();
    const record = await backups.create();
    const [result] = await backups.verify(record.path);
    assert.equal(result!.ok, true, result!.detail);
    assert.match(result!.detail, /^sha256 ok, restored into scratch database dr_verify_\w+ on 127\.0\.0\.1:\d+, 4 table\(s\), \d+ row\(s\) as recorded at backup time$/);
    assert.deepEqual(result!.tables, record.tables);
    const scratch = await server.query("SELECT datname FROM pg_database WHERE datname LIKE 'dr_verify_%'");
    assert.deepEqual(scratch, []);
  });

  test('under concurrent writes the archive and its row counts are the same snapshot', async () => {
    const { backups, database } = await shop(20_000);
    let writing = true;
    let inserted = 0;
    const writer = (async () => {
      while (writing) {
        await asApp(server, database, `INSERT INTO images (url) SELECT 'https://w.example/' || gen_random_uuid() FROM generate_series(1, 50); INSERT INTO audit.events (at) VALUES (now())`);
        inserted += 50;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const record = await backups.create();
    writing = false;
    await writer;
    assert.ok(inserted > 0);
    const [result] = await backups.verify(record.path);
    assert.equal(result!.ok, true, result!.detail);
    assert.deepEqual(result!.tables, record.tables);
    assert.ok((await rowCounts(server, database))['public.images']! > record.tables!['public.images']!, 'the writer went on after the snapshot');
  });

  test('one corrupt byte: verify names it, restore refuses, the database is unchanged', async () => {
    const { backups, database } = await shop();
    const record = await backups.create();
    corruptOneByte(record.path);
    const before = await fingerprint(server, database);
    await assert.rejects(backups.restore(backups.planRestore({ file: record.path })), (e: Error) => e instanceof ConflictError && /checksum mismatch/.test(e.message));
    const mine = (await backups.verify())[0]!;
    assert.equal(mine.file, record.path);
    assert.equal(mine.ok, false);
    assert.match(mine.detail, /checksum mismatch/);
    assert.deepEqual(await fingerprint(server, database), before);
  });

  test('a restore that fails part-way is rolled back whole', async () => {
    const { backups, database } = await shop();
    const record = await backups.create();
    // An object the backup does not know depends on a table the restore must drop: pg_restore fails there.
    await asApp(server, database, 'DELETE FROM image_tags; CREATE VIEW blocker AS SELECT id FROM images');
    const before = await fingerprint(server, database);
    await assert.rejects(
      backups.restore(backups.planRestore({ file: record.path })),
      /restoring .* over primary failed: restore into primary failed and was rolled back: .*cannot drop .* because other objects depend on it/,
    );
    assert.deepEqual(await fingerprint(server, database), before);
  });

  test('an archive cut short (the sidecar killed mid-restore) or a stream that fails commits nothing', async () => {
    const { backups, database, config } = await shop();
    const record = await backups.create();
    await asApp(server, database, 'DELETE FROM image_tags');
    const before = await fingerprint(server, database);
    const db = config.databases.find((d) => d.name === 'primary')!;
    const archive = execFileSync('gunzip', ['-c', record.path], { maxBuffer: 1 << 30 });
    const cut = archive.subarray(0, Math.floor(archive.length * 0.6));
    await assert.rejects(postgresBackup.restore(db, Readable.from([cut])), /rolled back/);
    assert.deepEqual(await fingerprint(server, database), before);

    const failing = Readable.from(
      (async function* () {
        yield cut;
        throw new Error('disk read error');
      })(),
    );
    await assert.rejects(postgresBackup.restore(db, failing), /stopped and rolled back.*disk read error/);
    assert.deepEqual(await fingerprint(server, database), before);
    await postgresBackup.restore(db, readBackupContent(record.path, true));
    assert.equal((await rowCounts(server, database))['public.image_tags'], record.tables!['public.image_tags']);
  });

  test('a server that is down: a clear error naming the database, counted; no password anywhere', async () => {
    const { backups, outcomes } = await shop(10);
    await server.stop();
    try {
      await assert.rejects(backups.create(), /backup of primary failed: cannot connect to primary \(postgresql:\/\/app:\*\*\*@127\.0\.0\.1:\d+\/shop\d+\): connection refused/);
      assert.deepEqual(outcomes.map((o) => o.result), ['error']);
      assert.deepEqual(fs.readdirSync(backups.catalogue.dirOf('primary')).filter((f) => f.startsWith('.')), []);
    } finally {
      await server.start();
    }
    assert.equal(logText.includes(APP_PASSWORD), false, 'the password never reaches a log line');
    assert.match(logText, /backup of primary failed/);
  });
});
