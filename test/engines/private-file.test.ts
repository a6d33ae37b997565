/**
 * Modes of what the sidecar writes, under the widest umask: its own files and
 * folders are the owner's only; a database it copies keeps the mode the
 * application gave the file it replaces. (The CLI under umask 000/022 is in
 * test/e2e/file-modes.test.ts.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ensurePrivateFolder } from '../../src/engines/private-file.js';
import { copySqliteDatabase } from '../../src/engines/sqlite-copy.js';
import { makeImagesDb, tempDir } from '../support/sqlite.js';

const modeOf = (file: string) => (fs.statSync(file).mode & 0o777).toString(8).padStart(4, '0');
let previousUmask: number;
before(() => (previousUmask = process.umask(0o000)));
after(() => process.umask(previousUmask));

test('a copy over a secondary keeps the secondary\'s mode; a copy to a missing file takes the source\'s', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const source = path.join(dir, 'primary.db');
  makeImagesDb(source, 10);
  fs.chmodSync(source, 0o640);
  const existing = path.join(dir, 'secondary1.db');
  makeImagesDb(existing, 1);
  fs.chmodSync(existing, 0o600);

  await copySqliteDatabase(source, existing);
  await copySqliteDatabase(source, path.join(dir, 'secondary2.db'));
  assert.equal(modeOf(existing), '0600');
  assert.equal(modeOf(path.join(dir, 'secondary2.db')), '0640');
});

test('folders: the ones created are 0700, one that existed keeps its mode', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  fs.chmodSync(dir, 0o755);
  ensurePrivateFolder(path.join(dir, 'a/b'));
  assert.deepEqual([modeOf(dir), modeOf(path.join(dir, 'a')), modeOf(path.join(dir, 'a/b'))], ['0755', '0700', '0700']);
  fs.writeFileSync(path.join(dir, 'file'), '');
  assert.throws(() => ensurePrivateFolder(path.join(dir, 'file')), /not a folder/);
});
