/**
 * The periodic copies that keep SQLite secondaries warm, on real files: a large
 * primary under a steady writer is still copied (and the sidecar's event loop
 * does not stall meanwhile), and a copy never replaces a file once the plan it
 * was made under no longer holds, nor interleaves with another copy into it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { copySqliteDatabase, CopyCancelled } from '../../src/engines/sqlite-copy.js';
import { REPO_ROOT } from '../support/cli.js';
import { imageIds, seedImages, sleep, sqliteCluster, startSidecar } from '../support/sqlite-cluster.js';

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

/**
 * A writer in a process of its own (so the event-loop delay measured here is the
 * sidecar's alone): a row every few ms into `file`, printing "id ackedAtMs" per commit.
 */
function childWriter(file: string, firstId: number): { acks: Map<number, number>; stop(): Promise<void> } {
  const script = `
    import Database from 'better-sqlite3';
    const [file, first] = process.argv.slice(1);
    const db = new Database(file, { timeout: 5000 });
    const insert = db.prepare("INSERT INTO images (id, url) VALUES (?, ?)");
    let id = Number(first), stop = false;
    process.stdin.on('close', () => (stop = true)).resume();
    while (!stop) {
      insert.run(id, 'https://example.com/img/' + id + '.jpg');
      process.stdout.write(id + ' ' + Date.now() + '\\n');
      id++;
      await new Promise((r) => setTimeout(r, 3));
    }
    db.close();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file, String(firstId)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const acks = new Map<number, number>();
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const lines = (buffered + d).split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [id, at] = line.split(' ').map(Number);
      acks.set(id!, at!);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    acks,
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

test('SQLite periodic copy: a 40 MB primary under a steady writer is copied every sync_interval, the event loop keeps going', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  grow(cluster.file('primary'), 40);
  const writer = childWriter(cluster.file('primary'), 1000);
  cluster.defer(() => writer.stop());
  while (writer.acks.size < 20) await sleep(20);

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  const copies: number[] = [];
  const deadline = Date.now() + 15_000;
  while (copies.length < 3 && Date.now() < deadline) {
    const at = sidecar.service.copies.lastCopyAt('secondary1');
    if (at !== undefined && at !== copies.at(-1)) copies.push(at);
    await sleep(20);
  }
  delay.disable();
  await writer.stop();
  assert.ok(copies.length >= 3, `${copies.length} copies of the busy primary in 15 s; log:\n${sidecar.logs.tail()}`);
  const maxStallMs = delay.max / 1e6;
  assert.ok(maxStallMs < 200, `the sidecar's event loop stalled ${maxStallMs.toFixed(0)} ms during the copies`);
  assert.ok(fs.statSync(cluster.file('secondary1')).size > 40e6, 'secondary1 holds the whole primary');
  const copied = imageIds(cluster.file('secondary1'));
  const ackedBeforeLastCopy = [...writer.acks].filter(([, at]) => at < copies.at(-1)!).map(([id]) => id);
  assert.ok(ackedBeforeLastCopy.length > 50);
  assert.deepEqual(ackedBeforeLastCopy.filter((id) => !copied.has(id)), [], 'the copy holds every row acknowledged before it began');
  t.diagnostic(`${copies.length} copies, ${writer.acks.size} rows written meanwhile, longest event-loop stall ${maxStallMs.toFixed(0)} ms`);
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
