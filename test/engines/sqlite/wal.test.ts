/**
 * The WAL reader on real logs written by SQLite (better-sqlite3, autocheckpoint
 * off): the committed pages it reads, written over the database file as it was
 * before, give the database SQLite itself shows.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseWalHeader, readCommitted, readWalHeader, startOf, walChecksum, type CommittedRange } from '../../../src/engines/sqlite/wal.js';
import { tempDir } from '../../support/sqlite.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/** A WAL database whose main file is saved (checkpointed) as `<file>.base`, then `transactions` commits of one row each into its WAL. */
function walWithCommits(name: string, transactions: number): { file: string; db: Database.Database } {
  const file = path.join(tmp.dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  db.pragma('wal_checkpoint(TRUNCATE)');
  fs.copyFileSync(file, `${file}.base`);
  const insert = db.prepare('INSERT INTO t (id, v) VALUES (?, randomblob(3000))');
  for (let id = 1; id <= transactions; id++) insert.run(id);
  return { file, db };
}

function openWal(file: string): number {
  return fs.openSync(`${file}-wal`, 'r');
}

/** The base file with the range's pages written over it and cut to its size: what SQLite would checkpoint. */
function applyToBase(file: string, walFd: number, range: CommittedRange, pageSize: number): string {
  const out = `${file}.applied`;
  fs.copyFileSync(`${file}.base`, out);
  const fd = fs.openSync(out, 'r+');
  try {
    const page = Buffer.alloc(pageSize);
    for (const [number, offset] of range.pages) {
      fs.readSync(walFd, page, 0, pageSize, offset);
      fs.writeSync(fd, page, 0, pageSize, (number - 1) * pageSize);
    }
    fs.ftruncateSync(fd, range.dbSize * pageSize);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

function rows(file: string): { ids: number[]; integrity: string } {
  const db = new Database(file, { readonly: true });
  try {
    return { ids: db.prepare('SELECT id FROM t ORDER BY id').pluck().all() as number[], integrity: db.pragma('integrity_check', { simple: true }) as string };
  } finally {
    db.close();
  }
}

test('WAL header: magic, version, page size and checksum are checked', () => {
  const { file, db } = walWithCommits('header.db', 1);
  try {
    const bytes = fs.readFileSync(`${file}-wal`).subarray(0, 32);
    const header = parseWalHeader(bytes);
    assert.ok(!('problem' in header), JSON.stringify(header));
    assert.equal(header.pageSize, 4096);
    const broken = Buffer.from(bytes);
    broken[17] = broken[17]! ^ 1;
    assert.deepEqual(parseWalHeader(broken), { problem: 'the WAL header checksum does not match' });
    assert.match((parseWalHeader(Buffer.alloc(32)) as { problem: string }).problem, /magic/);
    assert.deepEqual(walChecksum(true, Buffer.alloc(8), [1, 2]), [3, 5]);
  } finally {
    db.close();
  }
});

test('WAL reader: every committed transaction, the newest image of each page, the final size', () => {
  const { file, db } = walWithCommits('commits.db', 40);
  const fd = openWal(file);
  try {
    const header = readWalHeader(fd);
    assert.ok(header && !('problem' in header));
    const range = readCommitted(fd, startOf(header));
    assert.equal(range.transactions, 40);
    assert.ok(range.frames >= 40 && range.pages.size < range.frames, `${range.pages.size} pages of ${range.frames} frames: repeated pages kept once`);
    assert.equal(range.uncommittedFrames, 0);
    assert.equal(range.end.offset, fs.fstatSync(fd).size);
    const applied = rows(applyToBase(file, fd, range, header.pageSize));
    assert.deepEqual(applied, { ids: Array.from({ length: 40 }, (_, i) => i + 1), integrity: 'ok' });
    // Nothing new: an empty range from the end.
    assert.equal(readCommitted(fd, range.end).transactions, 0);
  } finally {
    fs.closeSync(fd);
    db.close();
  }
});

test('WAL reader: reads in bounded steps that end on commits, and continues from each end', () => {
  const { file, db } = walWithCommits('steps.db', 30);
  const fd = openWal(file);
  try {
    const header = readWalHeader(fd);
    assert.ok(header && !('problem' in header));
    let position = startOf(header);
    let transactions = 0;
    let steps = 0;
    for (;;) {
      const range = readCommitted(fd, position, 16 * 1024);
      if (range.transactions === 0) break;
      transactions += range.transactions;
      position = range.end;
      steps++;
    }
    assert.equal(transactions, 30);
    assert.ok(steps > 3, `${steps} steps`);
  } finally {
    fs.closeSync(fd);
    db.close();
  }
});

test('WAL reader: stops before a frame whose checksum fails, at the last whole commit', () => {
  const again = walWithCommits('torn.db', 10);
  try {
    const torn = `${again.file}-torn`;
    fs.copyFileSync(`${again.file}-wal`, torn);
    const fd0 = fs.openSync(torn, 'r');
    const header = readWalHeader(fd0);
    assert.ok(header && !('problem' in header));
    const whole = readCommitted(fd0, startOf(header));
    fs.closeSync(fd0);
    // Flip one byte in the page of the last frame: the last transaction is torn.
    const fdw = fs.openSync(torn, 'r+');
    const last = whole.end.offset - 100;
    const byte = Buffer.alloc(1);
    fs.readSync(fdw, byte, 0, 1, last);
    byte[0] = byte[0]! ^ 0xff;
    fs.writeSync(fdw, byte, 0, 1, last);
    fs.closeSync(fdw);
    const fd = fs.openSync(torn, 'r');
    try {
      const range = readCommitted(fd, startOf(header));
      assert.equal(range.transactions, 9);
      assert.ok(range.end.offset < whole.end.offset);
      fs.copyFileSync(`${again.file}.base`, `${torn}.base`);
      assert.deepEqual(rows(applyToBase(torn, fd, range, header.pageSize)).ids, Array.from({ length: 9 }, (_, i) => i + 1));
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    again.db.close();
  }
});
