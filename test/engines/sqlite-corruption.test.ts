/**
 * A corrupt SQLite file is down: the probe reads what a new application
 * connection reads (not what a connection's cache or the WAL still hold), and
 * the periodic quick_check finds damage in pages no probe reads.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig, type DatabaseConfig } from '../../src/config/load.js';
import { SqliteIntegrityChecks } from '../../src/engines/sqlite-integrity.js';
import { SqliteEngine } from '../../src/engines/sqlite.js';
import { SqliteProbePool } from '../../src/engines/sqlite-probe-pool.js';
import { insertImages, makeImagesDb, tempDir } from '../support/sqlite.js';
import { memoryLogger, sleep } from '../support/sqlite-cluster.js';

function sqliteDb(file: string): DatabaseConfig {
  return parseConfig(`disaster_recovery:\n  databases:\n    primary: { type: primary, priority: 0, url: "sqlite:///${file}" }\n`, 'x.yaml', {}).databases[0]!;
}

const garbage = (bytes: number) => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 7919 + 13) & 0xff));

function overwrite(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

test('SQLite: main file and the WAL\'s first frames overwritten under a writer: the probe is down, as every new connection is', async (t) => {
  const tmp = tempDir();
  const pool = new SqliteProbePool(1);
  const file = path.join(tmp.dir, 'primary.db');
  makeImagesDb(file, 500);
  // The writer: an open connection that keeps inserting, so the WAL holds the newest pages (page 1 among them).
  const writer = new Database(file);
  t.after(async () => {
    if (writer.open) writer.close();
    await pool.close();
    tmp.cleanup();
  });
  writer.pragma('wal_autocheckpoint = 0');
  const engine = new SqliteEngine(sqliteDb(file), pool);
  for (let i = 0; i < 5; i++) {
    insertImages(writer, 40, 1000 + i * 40);
    assert.equal((await engine.probe(2000)).up, true, 'healthy under the writer');
  }
  // A last commit that grows the file: page 1 (its size) is in the WAL's newest frames.
  writer.exec("CREATE TABLE IF NOT EXISTS blobs (b BLOB); INSERT INTO blobs VALUES (zeroblob(20000))");
  assert.equal((await engine.probe(2000)).up, true);

  const pageSize = writer.pragma('page_size', { simple: true }) as number;
  overwrite(file, 0, garbage(fs.statSync(file).size));
  overwrite(`${file}-wal`, 32, garbage(3 * (24 + pageSize)));

  // What the application sees on its next connection.
  assert.throws(() => {
    const app = new Database(file, { fileMustExist: true });
    try {
      app.prepare('SELECT count(*) FROM images').get();
    } finally {
      app.close();
    }
  }, /malformed|not a database/);

  const result = await engine.probe(2000);
  assert.equal(result.up, false, 'the probe reads what a new connection reads');
  assert.match(result.error ?? '', /not a SQLite database: its header does not start with "SQLite format 3"|malformed/);
  // And it stays down while the writer goes on trying.
  try {
    insertImages(writer, 1, 5000);
  } catch {
    // the writer may notice the damage itself
  }
  assert.equal((await engine.probe(2000)).up, false);
});

test('SQLite: the periodic quick_check finds damage in a page the probe does not read; nothing is copied from that file', async (t) => {
  const tmp = tempDir();
  const pool = new SqliteProbePool(1);
  const logs = memoryLogger();
  const integrity = new SqliteIntegrityChecks(300, logs.log);
  const file = path.join(tmp.dir, 'primary.db');
  t.after(async () => {
    await integrity.close();
    await pool.close();
    tmp.cleanup();
  });
  makeImagesDb(file, 4000);
  const db = new Database(file);
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  // A page in the middle of the file: a leaf of the table or of its index, far from the first leaf a probe reads.
  const victim = Math.floor(pages / 2);
  overwrite(file, (victim - 1) * pageSize, garbage(pageSize));

  const plain = new SqliteEngine(sqliteDb(file), pool);
  assert.equal((await plain.probe(2000)).up, true, 'the probe alone does not read the damaged page');

  const checked = new SqliteEngine(sqliteDb(file), pool, { integrity });
  assert.equal((await checked.probe(2000)).up, true, 'not started: no check (a one-shot CLI command never starts one)');
  integrity.start();
  const deadline = Date.now() + 20_000;
  let result = await checked.probe(2000);
  while (result.up && Date.now() < deadline) {
    await sleep(50);
    result = await checked.probe(2000);
  }
  assert.equal(result.up, false, `quick_check found the damage; log:\n${logs.tail()}`);
  assert.match(result.error ?? '', /^quick_check of .*primary\.db failed: .*(page|corrupt|malformed|btree)/i);
  assert.ok(logs.lines.some((l) => l.level >= 50 && /quick_check of .* failed/.test(l.msg)), logs.tail());

  // A copy (a failover's final copy) would pass the damaged pages on: it is called off instead.
  const dest = path.join(tmp.dir, 'secondary.db');
  makeImagesDb(dest, 10);
  const before = fs.readFileSync(dest);
  await assert.rejects(new SqliteEngine(sqliteDb(dest), pool).catchUp(checked, undefined, 10_000), /primary is damaged: quick_check of .* failed/);
  assert.deepEqual(fs.readFileSync(dest), before, 'the secondary was left as it was');
});
