/**
 * Offsite backups as a user meets them: the real sidecar and CLI, real SQLite
 * files, a real S3-compatible server (s3rver) that goes down and comes back,
 * and a restore from it after the local backup folder is gone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { configProblems, createDemoSandbox, eventually, freePort, httpGet, stackLines, type CliResult, type Sandbox } from '../support/cli.js';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3, type S3Server } from '../support/s3.js';
import { countImages } from '../support/sqlite.js';

const TOKEN = 'offsite-e2e-token-91f3c2';
const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const ENV = { DR_AUTH_TOKEN: TOKEN, S3_KEY: S3_ACCESS_KEY_ID, S3_SECRET: S3_SECRET_ACCESS_KEY };

let s3: S3Server;
before(async () => (s3 = await startS3()));
after(() => s3.close());

function sandboxWith(t: { after(fn: () => void): void }, port: number, offsite: unknown): Sandbox {
  const { sandbox, doc } = createDemoSandbox(t, port, 200);
  doc.disaster_recovery.backup = { ...doc.disaster_recovery.backup, enable_auto_backup: false, offsite };
  doc.server.auth_token = '${DR_AUTH_TOKEN:-}';
  sandbox.writeConfig(doc);
  return sandbox;
}

/** The harness's destination with its keys from the environment, as a user would write it. */
const offsiteEntry = (prefix: string) => [{ ...s3.offsite(prefix), access_key_id: '${S3_KEY}', secret_access_key: '${S3_SECRET}' }];

interface OffsiteJson {
  destination: string;
  offsite_files: number;
  pending_files: number;
  pending: string[];
  last_arrived: { key: string } | null;
  last_error: { message: string } | null;
}

describe('offsite backups (sidecar, CLI, s3rver)', () => {
  test('S3 down during a backup: the local backup succeeds, status says pending and why; it arrives and verifies when S3 is back; restore and verify from S3 with the local folder deleted; no secret anywhere', async (t) => {
    const port = await freePort();
    const sandbox = sandboxWith(t, port, offsiteEntry('prod/'));
    const destination = `s3://${s3.bucket}/prod`;
    const said: string[] = [];
    const run = async (args: string[]) => {
      const r = await sandbox.run([...args, '--config', 'config.yaml'], { env: ENV, timeoutMs: 60_000 });
      said.push(r.stdout, r.stderr);
      assert.deepEqual(stackLines(r.stderr), [], show(r));
      return r;
    };
    const offsiteStatus = async (): Promise<OffsiteJson> => {
      const r = await run(['status', '--json']);
      assert.equal(r.code, 0, show(r));
      return (JSON.parse(r.stdout) as { offsite: OffsiteJson[] }).offsite[0]!;
    };

    const monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env: ENV });
    let stopped = false;
    t.after(async () => {
      if (!stopped) await monitor.stop().catch(() => undefined);
    });

    await s3.stop();
    let file: string;
    try {
      const made = await run(['backup', '--json']);
      assert.equal(made.code, 0, show(made));
      file = JSON.parse(made.stdout).path as string;
      assert.ok(fs.existsSync(file));
      const key = path.relative(sandbox.path('backups'), file);
      await eventually('status to say pending, with the error', 30_000, async () => (await offsiteStatus()).last_error !== null);
      const down = await offsiteStatus();
      assert.equal(down.destination, destination);
      assert.equal(down.pending_files, 2);
      assert.deepEqual(down.pending, [key, `${key}.manifest.json`]);
      assert.match(down.last_error!.message, /ECONNREFUSED/);
      const text = await run(['status']);
      assert.match(text.stdout, new RegExp(`^Offsite: +${destination} +0 offsite, 2 pending \\(next: ${key}, ${key}\\.manifest\\.json\\); nothing arrived yet; LAST ERROR at \\S+: .*ECONNREFUSED`, 'm'), show(text));
      const metrics = await httpGet(`${monitor.url}/metrics`);
      assert.match(metrics.body, new RegExp(`^dr_backup_offsite_failures_total\\{destination="${destination}"\\} [1-9]`, 'm'));
    } finally {
      await s3.start();
    }

    const key = path.relative(sandbox.path('backups'), file);
    await eventually('the offsite copy to arrive', 90_000, async () => (await offsiteStatus()).pending_files === 0);
    const up = await offsiteStatus();
    assert.equal(up.last_error, null);
    assert.equal(up.offsite_files, 2);
    assert.equal(up.last_arrived?.key, `${key}.manifest.json`);
    const reader = new S3Storage({ endpoint: s3.endpoint, bucket: s3.bucket, prefix: 'prod/', region: 'us-east-1', accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY, forcePathStyle: true });
    t.after(() => reader.close());
    const hash = createHash('sha256');
    for await (const chunk of (await reader.read(key)) as AsyncIterable<Buffer>) hash.update(chunk);
    assert.equal(hash.digest('hex'), JSON.parse(fs.readFileSync(`${file}.manifest.json`, 'utf8')).sha256);
    await eventually('the metrics to show it', 20_000, async () => {
      const body = (await httpGet(`${monitor.url}/metrics`)).body;
      return new RegExp(`^dr_backup_offsite_pending_files\\{destination="${destination}"\\} 0$`, 'm').test(body) &&
        new RegExp(`^dr_backup_offsite_last_success_timestamp_seconds\\{destination="${destination}",database="primary"\\} \\d`, 'm').test(body);
    });
    const api = await httpGet(`${monitor.url}/api/status`, { authorization: `Bearer ${TOKEN}` });
    assert.equal(api.status, 200);
    said.push(api.body, (await httpGet(`${monitor.url}/metrics`)).body);
    assert.equal((JSON.parse(api.body) as { offsite: OffsiteJson[] }).offsite[0]!.pending_files, 0);
    const end = await monitor.stop();
    stopped = true;
    said.push(end.stdout, end.stderr);

    // The machine's backups are lost; the database is damaged.
    fs.rmSync(sandbox.path('backups'), { recursive: true });
    const live = sandbox.path('data/images_primary.db');
    const db = new Database(live);
    db.exec('DELETE FROM images WHERE id > 20');
    db.close();
    const verified = await run(['verify']);
    assert.equal(verified.code, 0, show(verified));
    assert.match(verified.stdout, new RegExp(`^ok +${destination}/${key} +sha256 ok, integrity_check ok, 1 table\\(s\\), 200 row\\(s\\)`, 'm'), show(verified));
    const restored = await run(['restore', file, '--yes']);
    assert.equal(restored.code, 0, show(restored));
    assert.match(restored.stdout, new RegExp(`^restored ${destination}/${key} over primary in `, 'm'));
    assert.equal(countImages(live), 200);
    assert.deepEqual(fs.readdirSync(sandbox.path('backups')).filter((n) => n.startsWith('.fetched')), [], 'the fetched copy is removed');

    for (const text of said) {
      for (const secret of [S3_SECRET_ACCESS_KEY, S3_ACCESS_KEY_ID]) assert.ok(!text.includes(secret), `a secret in:\n${text}`);
    }
  });

  test('a backup on no destination and not local is "no such backup file"', async (t) => {
    const sandbox = sandboxWith(t, await freePort(), offsiteEntry('empty/'));
    const r = await sandbox.run(['restore', 'backups/primary/backup_20200101T000000Z.db.gz', '--yes', '--config', 'config.yaml'], { env: ENV });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /no such backup file: .*backups\/primary\/backup_20200101T000000Z\.db\.gz/);
  });

  test('bad offsite config is refused by its path, with what to write', async (t) => {
    const sandbox = sandboxWith(t, await freePort(), [
      { type: 's3', endpoint: s3.endpoint, region: 'us-east-1', access_key_id: 'k', secret_access_key: 's' },
      { type: 'gcs', bucket: 'abc', access_key_id: 'k', secret_access_key: 's' },
      { ...s3.offsite('p'), endpoint: 'not a url' },
    ]);
    const r = await sandbox.run(['status', '--config', 'config.yaml']);
    assert.equal(r.code, 2, show(r));
    assert.deepEqual(configProblems(r.stderr), [
      'disaster_recovery.backup.offsite.0.bucket: is required',
      'disaster_recovery.backup.offsite.1.type: expected one of "s3"',
      'disaster_recovery.backup.offsite.2.endpoint: expected an http(s) URL of the S3-compatible service',
    ]);
    const dup = sandboxWith(t, await freePort(), [s3.offsite('dup'), s3.offsite('dup/')]);
    const d = await dup.run(['status', '--config', 'config.yaml']);
    assert.equal(d.code, 2, show(d));
    assert.deepEqual(configProblems(d.stderr), [`disaster_recovery.backup.offsite.1: is the same destination as disaster_recovery.backup.offsite.0 (s3://${s3.bucket}/dup)`]);
  });
});
