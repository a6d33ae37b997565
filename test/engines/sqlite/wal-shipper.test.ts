/**
 * The shipper on real files, in this thread: a primary in WAL mode written by
 * another connection, a secondary that starts as a whole copy and then takes
 * each committed range as one hot journal that SQLite plays back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { placeHotJournal, secondaryPageOne } from '../../../src/engines/sqlite/hot-journal.js';
import { readCommitted, readWalHeader, startOf } from '../../../src/engines/sqlite/wal.js';
import { WalShipper, type ShipperOptions } from '../../../src/engines/sqlite/wal-shipper.js';
import { copySqliteDatabase } from '../../../src/engines/sqlite-copy.js';
import { insertImages, makeImagesDb, tempDir } from '../../support/sqlite.js';

const tmp = tempDir();
after(() => tmp.cleanup());

interface Pair {
  primary: string;
  secondary: string;
  app: Database.Database;
  shipper: WalShipper;
  close(): void;
}

async function pair(name: string, options: Partial<ShipperOptions> = {}, guard: (t: string) => Promise<string | undefined> = async () => undefined): Promise<Pair> {
  const primary = path.join(tmp.dir, `${name}-primary.db`);
  const secondary = path.join(tmp.dir, `${name}-secondary.db`);
  makeImagesDb(primary, 10);
  const app = new Database(primary);
  app.pragma('journal_mode = WAL');
  app.pragma('wal_autocheckpoint = 0');
  const shipper = new WalShipper({ primary, lockTimeoutMs: 2000, maxPendingBytes: 64 * 1048576, walBoundBytes: 64 * 1048576, ...options }, guard);
  const begun = shipper.begin();
  assert.equal(begun.walMode, true);
  await copySqliteDatabase(primary, secondary, { rollbackJournal: true });
  return {
    primary,
    secondary,
    app,
    shipper,
    close() {
      shipper.close();
      app.close();
    },
  };
}

function snapshot(file: string): { ids: number[]; integrity: string; journalMode: string } {
  const db = new Database(file, { fileMustExist: true });
  try {
    return {
      ids: db.prepare('SELECT id FROM images ORDER BY id').pluck().all() as number[],
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      journalMode: db.pragma('journal_mode', { simple: true }) as string,
    };
  } finally {
    db.close();
  }
}

test('shipper: committed transactions reach the secondary, which stays a rollback-mode database SQLite reads whole', async () => {
  const p = await pair('basic');
  try {
    insertImages(p.app, 50, 100);
    insertImages(p.app, 1, 200);
    const outcome = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    assert.equal(outcome.lost, undefined);
    assert.equal(outcome.transactions, 2);
    assert.deepEqual(outcome.targets.map((t) => t.status), ['applied']);
    const primary = snapshot(p.primary);
    const secondary = snapshot(p.secondary);
    assert.deepEqual(secondary.ids, primary.ids);
    assert.equal(secondary.integrity, 'ok');
    assert.equal(secondary.journalMode, 'delete');
    assert.equal(fs.existsSync(`${p.secondary}-journal`), false, 'the journal was played back and removed');
    // Nothing new: nothing written.
    const idle = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    assert.equal(idle.transactions, 0);
  } finally {
    p.close();
  }
});

test('shipper: a reader connection open on the secondary sees each apply (its cache is invalidated)', async () => {
  const p = await pair('reader');
  const reader = new Database(p.secondary, { fileMustExist: true });
  try {
    const count = () => reader.prepare('SELECT count(*) FROM images').pluck().get() as number;
    assert.equal(count(), 10);
    for (let round = 1; round <= 5; round++) {
      insertImages(p.app, 3, 1000 + round * 10);
      await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
      assert.equal(count(), 10 + round * 3);
    }
    assert.equal(reader.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    reader.close();
    p.close();
  }
});

test('shipper: a VACUUM (the file shrinks) and its own checkpoints past the WAL bound keep the secondary equal', async () => {
  const p = await pair('vacuum', { walBoundBytes: 64 * 1024 });
  try {
    for (let i = 0; i < 20; i++) {
      insertImages(p.app, 50, 10_000 + i * 100);
      const outcome = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
      assert.equal(outcome.lost, undefined, `round ${i}`);
    }
    p.app.exec('DELETE FROM images WHERE id % 3 = 0');
    p.app.exec('VACUUM');
    const outcome = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    assert.equal(outcome.lost, undefined);
    const wal = fs.statSync(`${p.primary}-wal`).size;
    assert.ok(wal < 2 * 1048576, `WAL bounded by the shipper's checkpoints: ${wal} bytes`);
    insertImages(p.app, 5, 90_000);
    await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    const secondary = snapshot(p.secondary);
    assert.deepEqual(secondary.ids, snapshot(p.primary).ids);
    assert.equal(secondary.integrity, 'ok');
  } finally {
    p.close();
  }
});

test("shipper: the application's own wal_checkpoint(TRUNCATE) gets SQLITE_BUSY and loses nothing", async () => {
  const p = await pair('truncate');
  try {
    insertImages(p.app, 20, 500);
    p.app.pragma('busy_timeout = 100');
    const [result] = p.app.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    assert.equal(result!.busy, 1, 'the shipper holds a snapshot: the log cannot be restarted under it');
    insertImages(p.app, 20, 600);
    const outcome = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    assert.equal(outcome.lost, undefined);
    assert.deepEqual(snapshot(p.secondary).ids, snapshot(p.primary).ids);
  } finally {
    p.close();
  }
});

test('shipper: a secondary locked by a writer falls behind, keeps its pages, and catches up; past the bound it needs a copy', async () => {
  const p = await pair('stalled', { lockTimeoutMs: 50, maxPendingBytes: 200 * 1024 });
  const holder = new Database(p.secondary);
  try {
    holder.exec('BEGIN IMMEDIATE');
    insertImages(p.app, 5, 300);
    const behind = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    assert.equal(behind.targets[0]!.status, 'behind');
    assert.equal(behind.targets[0]!.pendingTransactions, 1);
    holder.exec('ROLLBACK');
    const caught = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] });
    assert.equal(caught.targets[0]!.status, 'applied');
    assert.deepEqual(snapshot(p.secondary).ids, snapshot(p.primary).ids);
    holder.exec('BEGIN IMMEDIATE');
    let status = 'behind';
    for (let i = 0; i < 50 && status === 'behind'; i++) {
      insertImages(p.app, 100, 5000 + i * 100);
      status = (await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }] })).targets[0]!.status;
    }
    assert.equal(status, 'needs-copy');
  } finally {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
    p.close();
  }
});

test('shipper: a primary replaced by another file is a lost continuity; a deleted one is still read to its last commit', async () => {
  const p = await pair('lost');
  try {
    insertImages(p.app, 5, 100);
    const tail = await p.shipper.ship({ targets: [] });
    assert.equal(tail.transactions, 1);
    // Deleted (with its WAL) under the writer, who goes on committing into the files it holds open.
    fs.rmSync(p.primary);
    fs.rmSync(`${p.primary}-wal`);
    insertImages(p.app, 7, 200);
    const final = await p.shipper.ship({ targets: [{ name: 'secondary', file: p.secondary }], final: true });
    assert.equal(final.primaryDeleted, true);
    assert.equal(final.lost, undefined);
    assert.equal(final.targets[0]!.status, 'applied');
    assert.equal(snapshot(p.secondary).ids.length, 10 + 5 + 7);
    p.shipper.close();
    p.app.close();
    makeImagesDb(p.primary, 3);
    const shipper = new WalShipper({ primary: p.primary, lockTimeoutMs: 200, maxPendingBytes: 1 << 20, walBoundBytes: 1 << 30 }, async () => undefined);
    shipper.begin();
    try {
      fs.copyFileSync(p.primary, `${p.primary}.other`);
      fs.renameSync(`${p.primary}.other`, p.primary);
      const outcome = await shipper.ship({ targets: [] });
      assert.match(outcome.lost ?? '', /replaced/);
    } finally {
      shipper.close();
    }
  } finally {
    p.close();
  }
});

test('hot journal: one left in place by a sidecar killed before the playback is played back whole by the next reader', async () => {
  const p = await pair('killed');
  try {
    insertImages(p.app, 40, 700);
    // What an apply writes, put in place with nobody holding a lock: the state a kill -9 right after the rename leaves.
    const fd = fs.openSync(`${p.primary}-wal`, 'r');
    try {
      const header = readWalHeader(fd);
      assert.ok(header && !('problem' in header));
      const range = readCommitted(fd, startOf(header));
      const image = (offset: number) => {
        const page = Buffer.alloc(header.pageSize);
        fs.readSync(fd, page, 0, header.pageSize, offset);
        return page;
      };
      const counter = fs.readFileSync(p.secondary).readUInt32BE(24);
      const first = range.pages.has(1) ? image(range.pages.get(1)!) : fs.readFileSync(p.secondary).subarray(0, header.pageSize);
      const pages: Array<[number, Buffer]> = [[1, secondaryPageOne(first, counter + 1, range.dbSize)]];
      for (const [number, offset] of range.pages) if (number !== 1) pages.push([number, image(offset)]);
      const before = snapshot(p.secondary).ids.length;
      placeHotJournal(p.secondary, pages, pages.length, range.dbSize, header.pageSize);
      assert.ok(fs.existsSync(`${p.secondary}-journal`));
      const after = snapshot(p.secondary);
      assert.equal(before, 10);
      assert.deepEqual(after.ids, snapshot(p.primary).ids);
      assert.equal(after.integrity, 'ok');
      assert.equal(fs.existsSync(`${p.secondary}-journal`), false, 'played back and removed by the reader');
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    p.close();
  }
});
