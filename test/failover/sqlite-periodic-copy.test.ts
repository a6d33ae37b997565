/**
 * The periodic copies that keep SQLite secondaries warm, on real files: a large
 * primary under a steady writer is still copied (and the sidecar's event loop
 * does not stall meanwhile), and a copy never replaces a file once the plan it
 * was made under no longer holds, nor interleaves with another copy into it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { copySqliteDatabase, CopyCancelled } from '../../src/engines/sqlite-copy.js';
import { imageIds, seedImages, sleep, sqliteCluster, startSidecar, Writer } from '../support/sqlite-cluster.js';

/** Pads the primary to about `mb` MB with rows of a side table (the writer's ids stay small). */
function grow(file: string, mb: number): void {
  const db = new Database(file);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS padding (id INTEGER PRIMARY KEY, blob TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO padding (blob) VALUES (?)');
    const row = 'x'.repeat(1000);
    db.transaction(() => {
      for (let i = 0; i < mb * 1000; i++) insert.run(row);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

test('SQLite periodic copy: a 40 MB primary under a steady writer is copied every sync_interval, the event loop keeps going', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  grow(cluster.file('primary'), 40);
  const config = cluster.load();
  const writer = await Writer.open(config, 1000, 2);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 20);

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const sidecar = await startSidecar(config);
  cluster.defer(() => sidecar.stop());
  const copies: number[] = [];
  const deadline = Date.now() + 15_000;
  while (copies.length < 3 && Date.now() < deadline) {
    const at = sidecar.service.copies.lastCopyAt('secondary1');
    if (at !== undefined && at !== copies.at(-1)) copies.push(at);
    await sleep(20);
  }
  delay.disable();
  const writes = writer.ackedOn('primary').length;
  await writer.stop();
  assert.ok(copies.length >= 3, `${copies.length} copies of the busy primary in 15 s; log:\n${sidecar.logs.tail()}`);
  const maxStallMs = delay.max / 1e6;
  assert.ok(maxStallMs < 200, `the event loop stalled ${maxStallMs.toFixed(0)} ms during the copies`);
  assert.ok(fs.statSync(cluster.file('secondary1')).size > 40e6, 'secondary1 holds the whole primary');
  const copied = imageIds(cluster.file('secondary1'));
  const ackedBeforeLastCopy = writer.ackedOn('primary').filter((id) => writer.acked.get(id)!.at < copies.at(-1)!);
  assert.deepEqual(ackedBeforeLastCopy.filter((id) => !copied.has(id)), [], 'the copy holds every row acknowledged before it began');
  t.diagnostic(`${copies.length} copies, ${writes} rows written meanwhile, longest event-loop stall ${maxStallMs.toFixed(0)} ms`);
});

test('SQLite copy: a guard that says no leaves the destination as it was', async (t) => {
  const cluster = sqliteCluster(t, { rows: 5 });
  seedImages(cluster.file('secondary1'), 0);
  const src = new Database(cluster.file('primary'));
  t.after(() => src.close());
  src.prepare("INSERT INTO images (url) VALUES ('https://example.com/new.jpg')").run();
  const before = fs.readFileSync(cluster.file('secondary1'));
  await assert.rejects(copySqliteDatabase(cluster.file('primary'), cluster.file('secondary1'), { guard: async () => 'the primary changed' }), (error: Error) => {
    assert.ok(error instanceof CopyCancelled);
    assert.match(error.message, /called off: the primary changed/);
    return true;
  });
  assert.deepEqual(fs.readFileSync(cluster.file('secondary1')), before, 'destination untouched');
  assert.deepEqual(
    fs.readdirSync(cluster.sandbox.path('data')).filter((f) => f.includes('.tmp-')),
    [],
    'no temporary file left behind',
  );
  const copied = await copySqliteDatabase(cluster.file('primary'), cluster.file('secondary1'), { guard: async () => undefined });
  assert.ok(copied.bytes > 0);
  assert.equal(imageIds(cluster.file('secondary1')).size, 6);
});

test('SQLite copy: waits for the destination\'s write lock, and the guard is asked under it', async (t) => {
  const cluster = sqliteCluster(t, { rows: 5 });
  const holder = new Database(cluster.file('secondary1'));
  t.after(() => holder.open && holder.close());
  holder.exec('BEGIN IMMEDIATE');
  let asked = 0;
  const copy = copySqliteDatabase(cluster.file('primary'), cluster.file('secondary1'), {
    timeoutMs: 10_000,
    guard: async () => {
      asked++;
      // Under the copy's own lock: nobody else can take it now.
      const other = new Database(cluster.file('secondary1'), { timeout: 0 });
      try {
        assert.throws(() => other.exec('BEGIN IMMEDIATE'), /locked|busy/i);
      } finally {
        other.close();
      }
      return undefined;
    },
  });
  await sleep(300);
  assert.equal(asked, 0, 'not before the lock is free');
  holder.exec('ROLLBACK');
  holder.close();
  await copy;
  assert.equal(asked, 1);
  assert.equal(imageIds(cluster.file('secondary1')).size, 5);
});
