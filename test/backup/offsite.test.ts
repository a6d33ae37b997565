/**
 * The offsite copier against a real S3-compatible server (s3rver) and real
 * backups of real SQLite files taken by the real CLI: what counts as offsite
 * is what was read back from the destination with the right checksum.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { OffsiteCopier } from '../../src/backup/offsite.js';
import { localFilesOf, offsiteStatus } from '../../src/backup/offsite-status.js';
import { LocalStorage } from '../../src/storage/local-storage.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { createDemoSandbox, freePort, type Sandbox } from '../support/cli.js';
import { memoryLogger } from '../support/failover.js';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3, type S3Server } from '../support/s3.js';

let s3: S3Server;
before(async () => (s3 = await startS3()));
after(() => s3.close());

let prefixes = 0;
function destination(): S3Storage {
  return new S3Storage({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    prefix: `offsite-${++prefixes}/`,
    region: 'us-east-1',
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
  });
}

async function backupSandbox(t: { after(fn: () => void): void }, backups: number): Promise<{ sandbox: Sandbox; files: string[] }> {
  const { sandbox, doc } = createDemoSandbox(t, await freePort(), 300);
  doc.disaster_recovery.backup = { ...doc.disaster_recovery.backup, enable_auto_backup: false, max_backups: 2 };
  sandbox.writeConfig(doc);
  const files: string[] = [];
  for (let i = 0; i < backups; i++) {
    const r = await sandbox.run(['backup', '--name', `b${i}`, '--json', '--config', 'config.yaml']);
    assert.equal(r.code, 0, r.stderr);
    files.push(path.relative(sandbox.path('backups'), JSON.parse(r.stdout).path as string));
  }
  return { sandbox, files };
}

function copier(sandbox: Sandbox, dest: S3Storage, log = memoryLogger().log): OffsiteCopier {
  return new OffsiteCopier({
    local: new LocalStorage(sandbox.path('backups')),
    destinations: [dest],
    retention: { maxBackups: 2, retentionDays: 30 },
    log,
    scrub: (text) => text,
  });
}

const sha256Of = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
async function remoteSha(dest: S3Storage, key: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of (await dest.read(key)) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}
const statusOf = (c: OffsiteCopier, sandbox: Sandbox) => offsiteStatus(localFilesOf(new LocalStorage(sandbox.path('backups'))), c.index(c.destinations[0]!));

describe('offsite copier (s3rver, real backups)', () => {
  test('every final file goes up, backups before their manifests, each verified; hidden and .partial files stay home', async (t) => {
    const { sandbox, files } = await backupSandbox(t, 2);
    fs.mkdirSync(sandbox.path('backups/primary/archive'), { recursive: true });
    fs.writeFileSync(sandbox.path('backups/primary/archive/000001.seg'), 'segment one');
    fs.writeFileSync(sandbox.path('backups/primary/archive/000002.seg.partial'), 'not final');
    fs.writeFileSync(sandbox.path('backups/primary/.hidden.tmp-1-2'), 'temporary');
    const dest = destination();
    t.after(() => dest.close());
    const logs = memoryLogger();
    const c = copier(sandbox, dest, logs.log);
    assert.equal(statusOf(c, sandbox).pending_files, 5);
    await c.sync(dest);

    const keys = (await dest.list('')).map((o) => o.key);
    assert.deepEqual(keys, [...files.flatMap((f) => [f, `${f}.manifest.json`]), 'primary/archive/000001.seg'].sort());
    for (const key of keys) assert.equal(await remoteSha(dest, key), sha256Of(sandbox.path(`backups/${key}`)), key);
    const copied = logs.lines().filter((l) => String(l.msg).includes('copied to')).map((l) => l.key);
    const first = files[0]!;
    assert.ok(copied.indexOf(first) < copied.indexOf(`${first}.manifest.json`), `a backup before its manifest: ${copied.join(', ')}`);
    const status = statusOf(c, sandbox);
    assert.equal(status.pending_files, 0);
    assert.equal(status.offsite_files, 5);
    assert.equal(status.last_error, null);
    assert.equal(fs.statSync(c.indexFileOf(dest)).mode & 0o777, 0o600);

    // A manifest rewritten later (verify records its result in it) goes up again.
    const r = await sandbox.run(['verify', sandbox.path(`backups/${first}`), '--config', 'config.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statusOf(c, sandbox).pending_files, 1);
    await c.sync(dest);
    const manifest = await remoteSha(dest, `${first}.manifest.json`);
    assert.equal(manifest, sha256Of(sandbox.path(`backups/${first}.manifest.json`)));
    assert.match(fs.readFileSync(sandbox.path(`backups/${first}.manifest.json`), 'utf8'), /"verification"/);
  });

  test('a destination that is down: the pass fails, status says pending and why; it catches up when back', async (t) => {
    const { sandbox, files } = await backupSandbox(t, 1);
    const dest = destination();
    t.after(() => dest.close());
    const c = copier(sandbox, dest);
    await s3.stop();
    try {
      await assert.rejects(c.sync(dest), /ECONNREFUSED/);
      const status = statusOf(c, sandbox);
      assert.equal(status.pending_files, 2);
      assert.deepEqual(status.pending, [files[0], `${files[0]}.manifest.json`]);
      assert.match(status.last_error?.message ?? '', new RegExp(`^${dest.name} at ${s3.endpoint}: listing .* failed: .*ECONNREFUSED`));
      assert.doesNotMatch(JSON.stringify(status), /Xq93Lm20Vb71Tk55|AKIADRSIDECARTEST7Q2/);
    } finally {
      await s3.start();
    }
    await c.sync(dest);
    const status = statusOf(c, sandbox);
    assert.equal(status.pending_files, 0);
    assert.equal(status.last_error, null);
    assert.equal(status.last_arrived?.key, `${files[0]}.manifest.json`);
  });

  test('nothing counts as offsite that is not there: an object deleted or damaged behind its back is copied again; a lost index is rebuilt by checking', async (t) => {
    const { sandbox, files } = await backupSandbox(t, 1);
    const dest = destination();
    t.after(() => dest.close());
    const logs = memoryLogger();
    const c = copier(sandbox, dest, logs.log);
    await c.sync(dest);
    const key = files[0]!;
    const local = sha256Of(sandbox.path(`backups/${key}`));

    await dest.delete(key);
    await c.sync(dest);
    assert.ok(logs.lines().some((l) => l.key === key && /no longer on .* counts as offsite no more/.test(String(l.msg))), logs.text());
    assert.equal(await remoteSha(dest, key), local);

    // The index lost, and the object replaced by garbage of the same size: found by its checksum, not its size.
    const size = fs.statSync(sandbox.path(`backups/${key}`)).size;
    await dest.write(key, Readable.from([Buffer.alloc(size, 7)]));
    fs.rmSync(c.indexFileOf(dest));
    assert.equal(statusOf(c, sandbox).offsite_files, 0);
    const before = logs.lines().filter((l) => String(l.msg).includes('copied to')).length;
    await c.sync(dest);
    assert.equal(await remoteSha(dest, key), local);
    const copied = logs.lines().filter((l) => String(l.msg).includes('copied to')).slice(before).map((l) => l.key);
    assert.deepEqual(copied, [key], 'only the damaged object is uploaded again; the manifest is checked and kept');
    assert.equal(statusOf(c, sandbox).offsite_files, 2);
  });

  test('retention removes the same backups offsite as locally, and never because the local folder is gone', async (t) => {
    const { sandbox, files } = await backupSandbox(t, 2);
    const dest = destination();
    t.after(() => dest.close());
    const c = copier(sandbox, dest);
    await c.sync(dest);
    const third = await sandbox.run(['backup', '--name', 'b2', '--json', '--config', 'config.yaml']);
    assert.equal(third.code, 0, third.stderr);
    const newest = path.relative(sandbox.path('backups'), JSON.parse(third.stdout).path as string);
    // Local retention (max_backups 2) removed the oldest; the copier removes it offsite too.
    assert.equal(fs.existsSync(sandbox.path(`backups/${files[0]}`)), false);
    await c.sync(dest);
    const expected = [files[1]!, newest].flatMap((f) => [f, `${f}.manifest.json`]).sort();
    assert.deepEqual((await dest.list('')).map((o) => o.key), expected);

    fs.rmSync(sandbox.path('backups'), { recursive: true });
    await c.sync(dest);
    assert.deepEqual((await dest.list('')).map((o) => o.key), expected);
  });
});
