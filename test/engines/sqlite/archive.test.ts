/**
 * The archive on the WAL shipper's reads, against real SQLite files: the
 * snapshot at the shipper's position (frames not yet checkpointed included),
 * segments per read, restores to the transaction, checkpoints by another
 * connection that keep continuity, periodic snapshots that join the window,
 * an interruption that leaves a gap, retention on the real folder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { readArchive } from '../../../src/engines/sqlite/archive-catalogue.js';
import { rebuildAt, sqliteRestoreWindow, verifySqliteArchive } from '../../../src/engines/sqlite/archive-restore.js';
import { SqliteArchive } from '../../../src/engines/sqlite/archive.js';
import type { ArchiveRequest } from '../../../src/engines/sqlite/archive-writer.js';
import { WalShipper } from '../../../src/engines/sqlite/wal-shipper.js';
import { LocalStorage } from '../../../src/storage/local-storage.js';
import { memoryLogger } from '../../support/failover.js';
import { countImages, insertImages, makeImagesDb, tempDir } from '../../support/sqlite.js';

function setUp(t: { after(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('dr-archive-');
  const primary = path.join(dir, 'primary.db');
  makeImagesDb(primary, 10);
  const app = new Database(primary, { timeout: 100 });
  // Frames stay in the WAL unless someone checkpoints: the snapshot must read them from there.
  app.pragma('wal_autocheckpoint = 0');
  const shipper = new WalShipper({ primary, lockTimeoutMs: 5000, maxPendingBytes: 64 * 1048576, walBoundBytes: 64 * 1048576 }, async () => undefined);
  const root = path.join(dir, 'backups');
  const storage = new LocalStorage(root);
  t.after(() => {
    shipper.close();
    app.close();
    cleanup();
  });
  const request = (over: Partial<ArchiveRequest> = {}): ArchiveRequest => ({ root, database: 'primary', snapshotIntervalMs: 3_600_000, reason: 'the test began archiving', ...over });
  return { dir, primary, app, shipper, storage, request };
}

/** Waits for the clock to move past `ms`: reads apart in time, so each segment has a time of its own. */
async function after(ms: number): Promise<void> {
  while (Date.now() <= ms + 5) await new Promise((r) => setTimeout(r, 5));
}

test('segments restore to the transaction on top of a snapshot that holds frames not yet checkpointed; checkpoints by another connection keep the generation', async (t) => {
  const { dir, app, shipper, storage, request } = setUp(t);
  shipper.begin();
  insertImages(app, 5, 100); // committed after the shipper's position: in the WAL only
  const opened = await shipper.ship({ targets: [], archive: request() });
  assert.ok(opened.archive?.opened, JSON.stringify(opened.archive));
  assert.equal(opened.archive.opened.reason, 'the test began archiving');
  const snapshotAt = Date.now();

  const times: Array<{ at: number; rows: number }> = [];
  let rows = 15;
  for (const batch of [1, 2, 3]) {
    await after(times.at(-1)?.at ?? snapshotAt);
    insertImages(app, batch, 1000 + rows);
    rows += batch;
    const shipped = await shipper.ship({ targets: [], archive: request() });
    assert.equal(shipped.archive?.segment?.transactions, 1);
    times.push({ at: shipped.archive.segment.committedMs, rows });
  }
  // Another connection checkpoints (PASSIVE copies what it may; TRUNCATE waits for the shipper's snapshot and gives up).
  app.pragma('wal_checkpoint(PASSIVE)');
  app.pragma('wal_checkpoint(TRUNCATE)');
  await after(times.at(-1)!.at);
  insertImages(app, 4, 5000);
  rows += 4;
  const later = await shipper.ship({ targets: [], archive: request() });
  assert.equal(later.lost, undefined);
  assert.equal(later.archive?.opened, undefined, 'the same generation goes on');
  times.push({ at: later.archive!.segment!.committedMs, rows });

  const first = await rebuildAt(storage, 'primary', new Date((await readArchive(storage, 'primary'))[0]!.startedMs), path.join(dir, 'r0.db'));
  assert.equal(countImages(path.join(dir, 'r0.db')), 15, 'the snapshot: 10 rows checkpointed and 5 in the WAL');
  assert.equal(first.segments, 0);
  for (const [i, { at, rows: expected }] of times.entries()) {
    const file = path.join(dir, `r${i + 1}.db`);
    const rebuilt = await rebuildAt(storage, 'primary', new Date(at), file);
    assert.equal(countImages(file), expected);
    assert.equal(rebuilt.segments, i + 1);
    assert.equal(rebuilt.lastTransactionAt?.getTime(), at);
  }
  const window = await sqliteRestoreWindow(storage, 'primary');
  assert.equal(window.ranges.length, 1);
  assert.deepEqual(window.gaps, []);
  const verified = await verifySqliteArchive(storage, 'primary', path.join(dir, 'scratch.db'));
  assert.equal(verified.ok, true, verified.detail);
  assert.match(verified.detail, new RegExp(`images ${rows};`));
  assert.equal(fs.existsSync(path.join(dir, 'scratch.db')), false);
});

test('a periodic snapshot continues the window without a gap; archiving stopped and begun again leaves a gap with its reason; a missing segment is a gap', async (t) => {
  const { dir, primary, app, shipper, storage, request } = setUp(t);
  shipper.begin();
  await shipper.ship({ targets: [], archive: request() });
  insertImages(app, 1, 100);
  // Due at once: the read is archived in the old generation, then a new one continues it.
  const periodic = await shipper.ship({ targets: [], archive: request({ snapshotIntervalMs: 0 }) });
  assert.ok(periodic.archive?.segment);
  assert.equal(periodic.archive?.opened?.continues, (await readArchive(storage, 'primary'))[0]!.name);
  assert.deepEqual((await sqliteRestoreWindow(storage, 'primary')).gaps, []);
  insertImages(app, 1, 200);
  await shipper.ship({ targets: [], archive: request() });

  // A read nobody archives (archiving stopped): the next generation cannot continue the last one.
  insertImages(app, 1, 300);
  await shipper.ship({ targets: [] });
  await after(Date.now());
  insertImages(app, 1, 400);
  const resumed = await shipper.ship({ targets: [], archive: request({ reason: 'leadership taken again' }) });
  assert.equal(resumed.archive?.opened?.continues, null);
  insertImages(app, 1, 500);
  await after(Date.now());
  await shipper.ship({ targets: [], archive: request() });
  insertImages(app, 1, 600);
  await after(Date.now());
  const last = await shipper.ship({ targets: [], archive: request() });

  let window = await sqliteRestoreWindow(storage, 'primary');
  assert.equal(window.ranges.length, 2);
  assert.equal(window.gaps.length, 1);
  assert.equal(window.gaps[0]!.reason, 'a new generation started: leadership taken again');
  assert.equal(countImages(primary), 16);
  const newest = await rebuildAt(storage, 'primary', new Date(last.archive!.segment!.committedMs), path.join(dir, 'newest.db'));
  assert.equal(countImages(path.join(dir, 'newest.db')), 16);
  assert.equal(newest.segments, 2);

  // Segment 1 of the newest generation lost: nothing after it there can be restored, and the gap says why.
  fs.rmSync(path.join(storage.root, ...((await readArchive(storage, 'primary')).at(-1)!.segments[0]!.key.split('/'))));
  window = await sqliteRestoreWindow(storage, 'primary');
  assert.equal(window.gaps.length, 2);
  assert.match(window.gaps[1]!.reason, /^segment 1 of generation \S+ is missing/);
  await assert.rejects(rebuildAt(storage, 'primary', new Date(last.archive!.segment!.committedMs), path.join(dir, 'never.db')), /outside the window/);
});

test('retention on the real folder removes whole generations no moment of the window needs, and keeps the newest', async (t) => {
  const { app, shipper, storage, request } = setUp(t);
  shipper.begin();
  for (let i = 0; i < 3; i++) {
    insertImages(app, 1, 100 + i);
    await shipper.ship({ targets: [], archive: request({ snapshotIntervalMs: 0 }) });
  }
  const before = await readArchive(storage, 'primary');
  assert.equal(before.length, 3);
  const archive = new SqliteArchive({ enabled: true, root: request().root, snapshotIntervalSeconds: 3600, retentionDays: 30, databases: ['primary'] }, storage, memoryLogger().log);
  await archive.applyRetention(new Date(Date.now() + 10 * 86_400_000));
  assert.equal((await readArchive(storage, 'primary')).length, 3, 'all inside 30 days');
  await archive.applyRetention(new Date(Date.now() + 40 * 86_400_000));
  const left = await readArchive(storage, 'primary');
  assert.deepEqual(left.map((g) => g.name), [before.at(-1)!.name]);
  assert.deepEqual(fs.readdirSync(path.join(request().root, 'primary', 'archive')), [before.at(-1)!.name]);
});
