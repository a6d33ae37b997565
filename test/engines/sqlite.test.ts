import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig, type DatabaseConfig } from '../../src/config/load.js';
import { SqliteEngine } from '../../src/engines/sqlite.js';
import { SqliteProbePool } from '../../src/engines/sqlite-probe-pool.js';
import { waitFor } from '../support/failover.js';
import { insertImages, makeImagesDb, tempDir } from '../support/sqlite.js';

function sqliteDb(file: string): DatabaseConfig {
  const config = parseConfig(
    `disaster_recovery:\n  databases:\n    primary: { type: primary, priority: 0, url: "sqlite:///${file}" }\n`,
    'x.yaml',
    {},
  );
  return config.databases[0]!;
}

describe('SQLite engine against real files', () => {
  const tmp = tempDir();
  const pool = new SqliteProbePool(2);
  const engineFor = (file: string) => new SqliteEngine(sqliteDb(file), pool);
  before(() => undefined);
  after(async () => {
    await pool.close();
    tmp.cleanup();
  });

  test('a healthy database is up, with a response time and the size of file plus WAL', async () => {
    const file = path.join(tmp.dir, 'healthy.db');
    makeImagesDb(file, 500);
    const writer = new Database(file);
    try {
      writer.pragma('wal_autocheckpoint = 0');
      insertImages(writer, 200, 500);
      const wal = fs.statSync(`${file}-wal`).size;
      assert.ok(wal > 0, 'the writer left pages in the WAL');
      const result = await engineFor(file).probe(2000);
      assert.equal(result.up, true, result.error);
      assert.equal(result.sizeBytes, fs.statSync(file).size + wal);
      assert.ok(result.responseTimeSeconds > 0 && result.responseTimeSeconds < 2);
    } finally {
      writer.close();
    }
  });

  test('a missing file is down with the reason, and is not created', async () => {
    const file = path.join(tmp.dir, 'missing.db');
    const result = await engineFor(file).probe(2000);
    assert.equal(result.up, false);
    assert.equal(result.error, `database file not found: ${file}`);
    assert.equal(fs.existsSync(file), false);
  });

  test('a corrupt file is down with the reason', async () => {
    const file = path.join(tmp.dir, 'corrupt.db');
    makeImagesDb(file, 10, 'delete');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('this is no longer a sqlite header'), 0, 33, 0);
    fs.closeSync(fd);
    const result = await engineFor(file).probe(2000);
    assert.equal(result.up, false);
    assert.match(result.error!, /not a SQLite database/);
  });

  test('a file that is not a database at all, and a directory, are down', async () => {
    const text = path.join(tmp.dir, 'notes.txt');
    fs.writeFileSync(text, 'hello '.repeat(1000));
    assert.match((await engineFor(text).probe(2000)).error!, /not a SQLite database/);
    assert.match((await engineFor(tmp.dir).probe(2000)).error!, /not a regular file/);
  });

  test('a database locked by a writer times out while the lock is held and does not block the event loop', async () => {
    const file = path.join(tmp.dir, 'locked.db');
    makeImagesDb(file, 10, 'delete');
    const locker = new Database(file);
    locker.exec('BEGIN EXCLUSIVE');
    try {
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      // The lock is released only after this: a probe that waited for it would never answer.
      let answer: Awaited<ReturnType<SqliteEngine['probe']>> | undefined;
      void engineFor(file).probe(400).then((r) => (answer = r));
      const result = await waitFor('the probe to give up on the locked database', 10_000, () => answer);
      clearInterval(ticker);
      assert.equal(result.up, false);
      assert.ok(ticks >= 3, `the event loop kept running during the probe (${ticks} ticks)`);
      const other = path.join(tmp.dir, 'other.db');
      makeImagesDb(other, 1);
      assert.equal((await engineFor(other).probe(2000)).up, true, 'the pool still serves other databases');
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    assert.equal((await engineFor(file).probe(2000)).up, true, 'up again once the lock is released');
  });
});
