/**
 * What every Storage must do, run against each implementation (the local
 * folder, S3 on a real s3rver): Litestream's RunWithReplicaClient.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { StorageNotFound, type Storage } from '../../src/storage/storage.js';
import { digestOf } from '../../src/backup/offsite.js';

export interface ContractSubject {
  storage: Storage;
  /** Removes every object (a fresh destination per test). */
  reset(): Promise<void>;
}

/** The bytes at `offset` of a deterministic content: a fixed block, rotated, stamped with its offset. */
function chunkAt(seed: number, offset: number, n: number): Buffer {
  const block = createHash('sha512').update(String(seed)).digest();
  const chunk = Buffer.alloc(n);
  for (let i = 0; i < n; i += block.length) block.copy(chunk, i, 0, Math.min(block.length, n - i));
  if (n >= 4) chunk.writeUInt32LE(offset >>> 0, 0);
  return chunk;
}

/** `size` bytes produced chunk by chunk (never whole in memory), failing after `failAfter` bytes when given. */
export function streamOf(size: number, seed: number, failAfter?: number): { body: Readable; sha256: string } {
  let sent = 0;
  const body = new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) return void this.destroy(new Error('the source failed half-way'));
      if (sent >= size) return void this.push(null);
      const n = Math.min(65536, size - sent);
      this.push(chunkAt(seed, sent, n));
      sent += n;
    },
  });
  const hash = createHash('sha256');
  for (let at = 0; at < size; at += 65536) hash.update(chunkAt(seed, at, Math.min(65536, size - at)));
  return { body, sha256: hash.digest('hex') };
}

const small = (text: string) => Readable.from([Buffer.from(text)]);

export function storageContract(label: string, subject: () => Promise<ContractSubject>): void {
  const fresh = async () => {
    const s = await subject();
    await s.reset();
    return s.storage;
  };

  test(`${label}: a multi-MB object streamed in comes back byte for byte, with its size and sha256`, async () => {
    const storage = await fresh();
    const size = 12 * 1024 * 1024 + 12345; // more than one multipart part
    const { body, sha256 } = streamOf(size, 1);
    const written = await storage.write('primary/backup_1.db.gz', body);
    assert.deepEqual({ key: written.key, size: written.size, sha256: written.sha256 }, { key: 'primary/backup_1.db.gz', size, sha256 });
    assert.deepEqual(await digestOf(await storage.read('primary/backup_1.db.gz')), { sha256, size });
    const stat = await storage.stat('primary/backup_1.db.gz');
    assert.equal(stat?.size, size);
    assert.ok(stat.modified instanceof Date && !Number.isNaN(stat.modified.getTime()));
  });

  test(`${label}: list gives the objects under a prefix, in key order`, async () => {
    const storage = await fresh();
    for (const key of ['secondary1/b.db', 'primary/z.db', 'primary/a.db', 'primary/a.db.manifest.json', 'primary/archive/0001.seg', 'primaryx/c.db']) {
      await storage.write(key, small(key));
    }
    assert.deepEqual((await storage.list('primary/')).map((o) => o.key), ['primary/a.db', 'primary/a.db.manifest.json', 'primary/archive/0001.seg', 'primary/z.db']);
    assert.deepEqual((await storage.list('primary/archive/')).map((o) => [o.key, o.size]), [['primary/archive/0001.seg', 'primary/archive/0001.seg'.length]]);
    assert.deepEqual((await storage.list('')).map((o) => o.key), [
      'primary/a.db',
      'primary/a.db.manifest.json',
      'primary/archive/0001.seg',
      'primary/z.db',
      'primaryx/c.db',
      'secondary1/b.db',
    ]);
    assert.deepEqual(await storage.list('nothing/'), []);
  });

  test(`${label}: a missing key: stat undefined, read StorageNotFound; delete is idempotent`, async () => {
    const storage = await fresh();
    assert.equal(await storage.stat('primary/none.db'), undefined);
    await assert.rejects(storage.read('primary/none.db'), (error: unknown) => {
      assert.ok(error instanceof StorageNotFound, String(error));
      assert.equal(error.key, 'primary/none.db');
      return true;
    });
    await storage.write('primary/x.db', small('x'));
    await storage.delete('primary/x.db');
    await storage.delete('primary/x.db');
    await storage.delete('primary/never.db');
    assert.equal(await storage.stat('primary/x.db'), undefined);
    assert.deepEqual(await storage.list('primary/'), []);
  });

  test(`${label}: an object written again is replaced whole`, async () => {
    const storage = await fresh();
    await storage.write('primary/a.manifest.json', small('first version, longer'));
    await storage.write('primary/a.manifest.json', small('second'));
    assert.deepEqual(await digestOf(await storage.read('primary/a.manifest.json')), {
      sha256: createHash('sha256').update('second').digest('hex'),
      size: 6,
    });
  });

  test(`${label}: a write whose body fails half-way leaves no object under the key`, async () => {
    const storage = await fresh();
    for (const [key, size, failAfter] of [
      ['primary/big.db.gz', 20 * 1024 * 1024, 11 * 1024 * 1024], // after a multipart part went up
      ['primary/small.db.gz', 1024 * 1024, 256 * 1024],
    ] as const) {
      const { body } = streamOf(size, 2, failAfter);
      await assert.rejects(storage.write(key, body), /failed/);
      assert.equal(await storage.stat(key), undefined, `${key} exists after a failed write`);
    }
    assert.deepEqual(await storage.list(''), []);
    // And an earlier good object under the key survives a failed rewrite.
    await storage.write('primary/keep.db', small('good'));
    await assert.rejects(storage.write('primary/keep.db', streamOf(1024 * 1024, 3, 1000).body));
    assert.equal((await storage.stat('primary/keep.db'))?.size, 4);
  });

  test(`${label}: keys that could leave the root are refused`, async () => {
    const storage = await fresh();
    for (const key of ['../escape.db', 'primary/../../x', '/abs/path', 'primary//x', '']) {
      await assert.rejects(storage.write(key, small('x')), /not a relative path/, key);
      await assert.rejects(storage.read(key), /not a relative path/, key);
      await assert.rejects(storage.stat(key), /not a relative path/, key);
      await assert.rejects(storage.delete(key), /not a relative path/, key);
    }
  });

}
