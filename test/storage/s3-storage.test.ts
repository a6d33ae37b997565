import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3, type S3Server } from '../support/s3.js';
import { storageContract } from './storage-contract.js';

let server: S3Server;
let storage: S3Storage;
before(async () => {
  server = await startS3();
  storage = s3Storage('contract/');
});
after(async () => {
  storage.close();
  await server.close();
});

function s3Storage(prefix: string, overrides: Partial<ConstructorParameters<typeof S3Storage>[0]> = {}): S3Storage {
  return new S3Storage({
    endpoint: server.endpoint,
    bucket: server.bucket,
    prefix,
    region: 'us-east-1',
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
    ...overrides,
  });
}

storageContract('s3 (s3rver)', async () => ({
  storage,
  reset: async () => {
    for (const o of await storage.list('')) await storage.delete(o.key);
  },
}));

test('s3: the name is s3://bucket/prefix; objects live under the prefix only', async () => {
  assert.equal(storage.name, `s3://${server.bucket}/contract`);
  const other = s3Storage('/other');
  try {
    assert.equal(other.name, `s3://${server.bucket}/other`);
    await other.write('primary/a.db', Readable.from([Buffer.from('a')]));
    assert.deepEqual((await storage.list('primary/')).map((o) => o.key), []);
    assert.deepEqual((await other.list('')).map((o) => o.key), ['primary/a.db']);
    await other.delete('primary/a.db');
  } finally {
    other.close();
  }
});

test('s3: errors name the destination and what failed, never the keys', async () => {
  const wrongBucket = s3Storage('p/', { bucket: 'no-such-bucket' });
  const unknownKey = s3Storage('p/', { accessKeyId: 'AKIAUNKNOWNKEY000001' });
  try {
    await assert.rejects(wrongBucket.write('primary/a.db', Readable.from([Buffer.from('a')])), (error: Error) => {
      assert.match(error.message, new RegExp(`^s3://no-such-bucket/p at ${server.endpoint}: writing primary/a\\.db failed: .*NoSuchBucket`));
      return true;
    });
    await assert.rejects(wrongBucket.read('primary/a.db'), /NoSuchBucket/); // not "not found": the destination is wrong
    await assert.rejects(unknownKey.list(''), (error: Error) => {
      assert.match(error.message, /listing \(everything\) failed: .*InvalidAccessKeyId/);
      assert.doesNotMatch(error.message, /AKIAUNKNOWNKEY000001|S3\+secret/);
      return true;
    });
    await server.stop();
    await assert.rejects(storage.stat('primary/a.db'), (error: Error) => {
      assert.match(error.message, new RegExp(`^s3://${server.bucket}/contract at ${server.endpoint}: reading the size of primary/a\\.db failed: .*ECONNREFUSED`));
      assert.doesNotMatch(error.message, new RegExp(`${S3_ACCESS_KEY_ID}|Xq93Lm20Vb71Tk55`));
      return true;
    });
  } finally {
    await server.start();
    wrongBucket.close();
    unknownKey.close();
  }
});
