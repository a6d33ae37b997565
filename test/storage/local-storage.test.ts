import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { LocalStorage } from '../../src/storage/local-storage.js';
import { storageContract } from './storage-contract.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-local-storage-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const storage = new LocalStorage(path.join(root, 'backups'));

storageContract('local folder', async () => ({
  storage,
  reset: async () => fs.rmSync(storage.root, { recursive: true, force: true }),
}));

test('local folder: files are 0600 and new folders 0700 whatever the umask; temporary and .partial files are never listed', async () => {
  fs.rmSync(storage.root, { recursive: true, force: true });
  const umask = process.umask(0);
  try {
    await storage.write('primary/a.db', Readable.from([Buffer.from('a')]));
  } finally {
    process.umask(umask);
  }
  assert.equal(fs.statSync(path.join(storage.root, 'primary/a.db')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(storage.root, 'primary')).mode & 0o777, 0o700);
  fs.writeFileSync(path.join(storage.root, 'primary/.a.db.tmp-1-2'), 'temp');
  fs.writeFileSync(path.join(storage.root, 'primary/b.db.partial'), 'partial');
  fs.mkdirSync(path.join(storage.root, '.offsite'));
  fs.writeFileSync(path.join(storage.root, '.offsite/index.json'), '{}');
  assert.deepEqual((await storage.list('')).map((o) => o.key), ['primary/a.db']);
  // A failed write leaves no temporary file behind either.
  await assert.rejects(storage.write('primary/c.db', new Readable({ read() { this.destroy(new Error('boom')); } })), /writing primary\/c\.db failed: boom/);
  assert.deepEqual(fs.readdirSync(path.join(storage.root, 'primary')).sort(), ['.a.db.tmp-1-2', 'a.db', 'b.db.partial']);
});
