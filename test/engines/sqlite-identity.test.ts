/**
 * The identity of a SQLite file: the decision (plain data), the header read
 * without SQLite, and the adapter against real files and a real state store:
 * a file replaced, emptied or truncated is lost, a VACUUM is not, a re-baseline
 * by another process is picked up, and a copy never takes a lost source.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig, type DatabaseConfig } from '../../src/config/load.js';
import { CopyCancelled } from '../../src/engines/sqlite-copy.js';
import { parseSqliteHeader, readSqliteFile } from '../../src/engines/sqlite-file.js';
import { observeSqliteFile, SqliteIdentities } from '../../src/engines/sqlite-identities.js';
import { judgeIdentity, worthPersisting, type SqliteIdentity } from '../../src/engines/sqlite-identity.js';
import { SqliteEngine } from '../../src/engines/sqlite.js';
import { SqliteProbePool } from '../../src/engines/sqlite-probe-pool.js';
import { silentLogger } from '../../src/log.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { countImages, insertImages, makeImagesDb, tempDir } from '../support/sqlite.js';

const base: SqliteIdentity = { dev: 1, ino: 100, born: 1000, pages: 40, changeCounter: 12, tables: 2 };

test('judgeIdentity: what makes a file another database', () => {
  const cases: Array<[string, Partial<SqliteIdentity>, RegExp | undefined]> = [
    ['the same file, grown', { pages: 90, changeCounter: 20 }, undefined],
    ['the same file, unchanged', {}, undefined],
    ['VACUUM: shrank, with a header write', { pages: 5, changeCounter: 13 }, undefined],
    ['a shrink by less than half without a header write', { pages: 25 }, undefined],
    ['another inode', { ino: 101 }, /replaced \(device:inode 1:100 -> 1:101/],
    ['another device', { dev: 2 }, /replaced/],
    ['the same inode number, born again', { born: 2000 }, /deleted and created again \(same inode 100, created 1970-01-01T00:00:02.000Z/],
    ['emptied to 0 bytes', { pages: 0, changeCounter: 0, tables: 0 }, /emptied \(0 pages, it had 40\)/],
    ['change counter went back (another file copied over it)', { changeCounter: 3 }, /change counter went back from 12 to 3/],
    ['no tables left', { tables: 0, changeCounter: 14 }, /schema is empty \(it had 2 tables\)/],
    ['truncated: under half, header untouched', { pages: 19 }, /shrank from 40 to 19 pages without a write to its header/],
    ['tables unknown (could not open) is not "no tables"', { tables: undefined }, undefined],
    ['no birth time kept by the file system', { born: 0 }, undefined],
  ];
  for (const [name, change, expected] of cases) {
    const why = judgeIdentity(base, { ...base, ...change });
    if (expected === undefined) assert.equal(why, undefined, name);
    else assert.match(why ?? '(not lost)', expected, name);
  }
});

test('worthPersisting: a move of a quarter of the pages, another file, the first table', () => {
  assert.equal(worthPersisting(base, { ...base, pages: 49 }), false);
  assert.equal(worthPersisting(base, { ...base, pages: 50 }), true);
  assert.equal(worthPersisting(base, { ...base, pages: 30 }), true);
  assert.equal(worthPersisting(base, { ...base, ino: 7 }), true);
  assert.equal(worthPersisting({ ...base, tables: 0 }, { ...base, tables: 1 }), true);
  assert.equal(worthPersisting(base, { ...base, changeCounter: 99 }), false);
});

test('the header read without SQLite: page size, change counter, damage', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const file = path.join(tmp.dir, 'h.db');
  makeImagesDb(file, 300);
  const db = new Database(file, { readonly: true });
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.close();
  const state = readSqliteFile(file);
  assert.ok(state.header && !('problem' in state.header));
  assert.equal(state.header.pageSize, pageSize);
  assert.equal(state.header.headerPages, pages);
  assert.ok(state.header.changeCounter > 0);
  assert.deepEqual(parseSqliteHeader(Buffer.alloc(100, 0x5a)), { problem: 'its header does not start with "SQLite format 3" (overwritten or not a database)' });
  assert.match((parseSqliteHeader(Buffer.alloc(10)) as { problem: string }).problem, /shorter than a SQLite header/);
});

function sqliteDb(name: string, file: string): DatabaseConfig {
  return parseConfig(`disaster_recovery:\n  databases:\n    ${name}: { type: primary, priority: 0, url: "sqlite:///${file}" }\n`, 'x.yaml', {}).databases[0]!;
}

test('SqliteIdentities on real files: first sight, replaced, VACUUM, truncated, picked up from another process', async (t) => {
  const tmp = tempDir();
  const store = new SqliteStateStore(path.join(tmp.dir, 'state.db'), { create: true });
  const other = new SqliteStateStore(path.join(tmp.dir, 'state.db'), { create: true });
  t.after(async () => {
    await store.close();
    await other.close();
    tmp.cleanup();
  });
  const file = path.join(tmp.dir, 'p.db');
  makeImagesDb(file, 2000);
  const identities = new SqliteIdentities(store, silentLogger());
  const judge = () => identities.judge('p', file, observeSqliteFile(file), true);

  assert.equal(await judge(), undefined, 'first sight is the baseline');
  assert.equal((await store.sqliteIdentities())[0]?.source, 'first-seen');
  // A VACUUM after most rows went: the file shrinks, with a write to its header.
  const db = new Database(file);
  db.exec('DELETE FROM images WHERE id > 20');
  db.exec('VACUUM');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  assert.equal(await judge(), undefined, 'a VACUUM is not a loss');

  // Deleted and recreated with a table, as an application's next connect does.
  for (const side of ['', '-wal', '-shm']) fs.rmSync(file + side, { force: true });
  const fresh = new Database(file);
  fresh.exec('CREATE TABLE images (id INTEGER PRIMARY KEY, url TEXT)');
  fresh.close();
  assert.match((await judge()) ?? '(not lost)', /replaced|deleted and created again|change counter went back|shrank/);
  assert.match((await identities.check('p', file)) ?? '(not lost)', /replaced|deleted and created again|change counter went back|shrank/, 'the copy path judges the same');

  // An operator accepts it, through another process's store: this one picks it up.
  await new SqliteIdentities(other, silentLogger()).rebaseline('p', file, 'accepted');
  assert.equal(await judge(), undefined, 'accepted elsewhere, picked up here');

  // Truncated in place (the header kept): sharply smaller, no header write.
  const big = path.join(tmp.dir, 'big.db');
  makeImagesDb(big, 3000);
  assert.equal(await identities.judge('big', big, observeSqliteFile(big), true), undefined);
  const pageSize = (readSqliteFile(big).header as { pageSize: number }).pageSize;
  fs.truncateSync(big, pageSize * 3);
  assert.match((await identities.judge('big', big, observeSqliteFile(big), false)) ?? '(not lost)', /shrank from \d+ to 3 pages/);
  // Emptied.
  fs.truncateSync(big, 0);
  assert.match((await identities.judge('big', big, observeSqliteFile(big), false)) ?? '(not lost)', /emptied/);
});

test('a copy never takes a source that lost its data, and re-baselines the file it replaces', async (t) => {
  const tmp = tempDir();
  const store = new SqliteStateStore(path.join(tmp.dir, 'state.db'), { create: true });
  const pool = new SqliteProbePool(1);
  t.after(async () => {
    await pool.close();
    await store.close();
    tmp.cleanup();
  });
  const identities = new SqliteIdentities(store, silentLogger());
  const src = path.join(tmp.dir, 'src.db');
  const dest = path.join(tmp.dir, 'dest.db');
  makeImagesDb(src, 50);
  makeImagesDb(dest, 50);
  const source = new SqliteEngine(sqliteDb('src', src), pool, { identities });
  const target = new SqliteEngine(sqliteDb('dest', dest), pool, { identities });
  assert.equal((await source.probe(2000)).up, true);
  assert.equal((await target.probe(2000)).up, true);

  const db = new Database(src);
  insertImages(db, 10, 1000);
  db.close();
  await target.catchUp(source, undefined, 10_000);
  assert.equal(countImages(dest), 60);
  const probe = await target.probe(2000);
  assert.equal(probe.up, true, `the copy's new file is the destination's baseline: ${probe.error}`);
  assert.equal((await store.sqliteIdentities()).find((r) => r.database === 'dest')?.source, 'copy');

  // The source is replaced by an empty database between the plan and the copy.
  for (const side of ['', '-wal', '-shm']) fs.rmSync(src + side, { force: true });
  const fresh = new Database(src);
  fresh.exec('CREATE TABLE images (id INTEGER PRIMARY KEY, url TEXT)');
  fresh.close();
  const before = fs.readFileSync(dest);
  await assert.rejects(target.catchUp(source, undefined, 10_000), (error: Error) => {
    assert.ok(error instanceof CopyCancelled, error.message);
    assert.match(error.message, /src lost its data/);
    return true;
  });
  assert.deepEqual(fs.readFileSync(dest), before, 'the destination was left as it was');
  const lost = await source.probe(2000);
  assert.equal(lost.up, false);
  assert.match(lost.error ?? '', /src lost its data: /);
  assert.ok(lost.lost);
});

test('a store that refuses writes (none exists yet) does not turn a probe into a failure', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const file = path.join(tmp.dir, 'p.db');
  makeImagesDb(file, 20);
  const refusing = {
    sqliteIdentities: async () => [],
    recordSqliteIdentity: async () => {
      throw new Error('no state store at /nowhere: start the sidecar first');
    },
  };
  const identities = new SqliteIdentities(refusing, silentLogger());
  assert.equal(await identities.judge('p', file, observeSqliteFile(file), true), undefined);
  // Kept in memory meanwhile: a replacement (another file renamed over it) is still noticed within this process.
  makeImagesDb(`${file}.new`, 0);
  fs.renameSync(`${file}.new`, file);
  assert.match((await identities.judge('p', file, observeSqliteFile(file), true)) ?? '(not lost)', /the file was replaced/);
});

test('a file deleted and created again just like it (often the same inode number) is lost', async (t) => {
  const tmp = tempDir();
  const store = new SqliteStateStore(path.join(tmp.dir, 'state.db'), { create: true });
  t.after(async () => {
    await store.close();
    tmp.cleanup();
  });
  const file = path.join(tmp.dir, 'p.db');
  makeImagesDb(file, 20);
  const identities = new SqliteIdentities(store, silentLogger());
  const before = observeSqliteFile(file);
  assert.equal(await identities.judge('p', file, before, true), undefined);
  for (const side of ['', '-wal', '-shm']) fs.rmSync(file + side, { force: true });
  makeImagesDb(file, 20);
  const after = observeSqliteFile(file);
  t.diagnostic(`inode ${before.ino} -> ${after.ino}, pages ${before.pages} -> ${after.pages}, change counter ${before.changeCounter} -> ${after.changeCounter}`);
  assert.match((await identities.judge('p', file, after, true)) ?? '(not lost)', /deleted and created again|the file was replaced/);
});
