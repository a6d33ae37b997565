/**
 * The whole copies of SQLite secondaries, on real files: the copy that starts a
 * generation of WAL shipping, of a large primary under a steady writer, is made
 * (and the sidecar's event loop runs while it is written), the frames follow; a
 * copy never replaces a file once the plan it was made under no longer holds,
 * nor interleaves with another copy into it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { copySqliteDatabase, CopyCancelled } from '../../src/engines/sqlite-copy.js';
import { childWriter, imageIds, padDatabase, seedImages, sleep, sqliteCluster, startSidecar } from '../support/sqlite-cluster.js';

/**
 * Watches the folder of `dest` on this thread's event loop, every millisecond, for
 * the temporary file a copy into `dest` writes (`.name.tmp-…`, see temporaryNameFor):
 * the most sizes it saw one such file at while its copy's write transaction was
 * open (its `-journal` beside it). A copy made on this thread writes its pages
 * in one synchronous step (after a first step of 100 pages), so the event loop
 * sees each file at one size at most; made elsewhere, at many.
 */
function watchCopyFile(dest: string): { sizesWhileWritten(): number; stop(): void } {
  const dir = path.dirname(dest);
  const prefix = `.${path.basename(dest)}.tmp-`;
  const sizes = new Map<string, Set<number>>();
  const timer = setInterval(() => {
    const names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
    for (const name of names.filter((n) => !n.endsWith('-journal') && names.includes(`${n}-journal`))) {
      try {
        const size = fs.statSync(path.join(dir, name)).size;
        sizes.set(name, (sizes.get(name) ?? new Set()).add(size));
      } catch {
        // Renamed or removed meanwhile.
      }
    }
  }, 1);
  return { sizesWhileWritten: () => Math.max(0, ...[...sizes.values()].map((s) => s.size)), stop: () => clearInterval(timer) };
}

test('SQLite replication: a 40 MB primary under a steady writer is copied whole (the event loop keeps going), then followed every sync_interval', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  padDatabase(cluster.file('primary'), 40);
  const writer = childWriter(cluster.file('primary'), 1000);
  cluster.defer(() => writer.stop());
  while (writer.acks.size < 20) await sleep(20);

  const watcher = watchCopyFile(cluster.file('secondary1'));
  cluster.defer(() => watcher.stop());
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const copies: number[] = [];
  const deadline = Date.now() + 60_000;
  while (copies.length < 3 && Date.now() < deadline) {
    const at = sidecar.service.copies.lastCopyAt('secondary1');
    if (at !== undefined && at !== copies.at(-1)) copies.push(at);
    await sleep(20);
  }
  watcher.stop();
  await writer.stop();
  assert.ok(copies.length >= 3, `${copies.length} rounds of replication of the busy primary in 60 s; log:\n${sidecar.logs.tail()}`);
  // The event loop ran while the copies were being written (how long it stalls is a figure of `npm run bench`).
  const sizes = watcher.sizesWhileWritten();
  assert.ok(sizes >= 3, `the event loop saw a copy's file at ${sizes} sizes while it was written`);
  assert.ok(fs.statSync(cluster.file('secondary1')).size > 40e6, 'secondary1 holds the whole primary');
  const copied = imageIds(cluster.file('secondary1'));
  const ackedBeforeLastCopy = [...writer.acks].filter(([, at]) => at < copies.at(-1)!).map(([id]) => id);
  assert.ok(ackedBeforeLastCopy.length > 50);
  assert.deepEqual(ackedBeforeLastCopy.filter((id) => !copied.has(id)), [], 'the copy holds every row acknowledged before it began');
  t.diagnostic(`${copies.length} copies, ${writer.acks.size} rows written meanwhile, copy file seen at ${sizes} sizes while written`);
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
