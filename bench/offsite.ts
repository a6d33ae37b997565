/**
 * Offsite copy throughput and memory: one backup-sized file (BENCH_OFFSITE_MB,
 * default 512 MB of incompressible bytes, as a gzipped backup is) written by
 * the Storage the offsite copier uses, to a real S3-compatible server on
 * loopback (s3rver, multipart, in this process) and, as the baseline, to the
 * local backup folder (temporary name, fsync, rename). Each write runs in a
 * child process: its peak RSS is the copier's own.
 * Targets: S3 throughput >= 0.8 x the local folder's; peak RSS < 200 MB.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3 } from '../test/support/s3.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';

const SIZE_MB = Number(process.env.BENCH_OFFSITE_MB ?? 512);
const MB = 1_000_000;
const RUNS = 2;
const RATIO_TARGET = 0.8;
const RSS_TARGET_MB = 200;

async function makeFile(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  for (let written = 0; written < bytes; written += 1 << 20) {
    if (!out.write(randomBytes(Math.min(1 << 20, bytes - written)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function child(ctx: BenchContext, job: Record<string, unknown>): Promise<{ seconds: number; peakRss: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ctx.root, 'dist/bench/offsite-child.js'), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.once('error', reject);
    p.once('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`offsite child exited ${code}: ${err}`))));
  });
}

const best = (runs: Array<{ seconds: number; peakRss: number }>) => ({
  seconds: Math.min(...runs.map((r) => r.seconds)),
  peakRss: Math.max(...runs.map((r) => r.peakRss)),
});

export const offsiteSection: Section = {
  title: 'offsite copy (S3 on loopback vs local folder)',
  budgetMs: 300_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const dir = path.join(ctx.tmp, 'offsite');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'backup.db.gz');
    await makeFile(file, SIZE_MB * MB);
    const s3 = await startS3({ bucket: 'bench-backups' });
    ctx.cleanup.add('s3rver', () => s3.close(), () => undefined);
    const s3Job = (mode: string, i: number) => ({
      mode,
      file,
      key: `primary/backup_${mode}_${i}.db.gz`,
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY },
    });
    const local = [];
    const upload = [];
    const verified = [];
    // Interleaved, so a slower moment of the machine hits both sides.
    for (let i = 0; i < RUNS; i++) {
      local.push(await child(ctx, { mode: 'local', file, key: `primary/backup_${i}.db.gz`, local: path.join(dir, 'backups') }));
      upload.push(await child(ctx, s3Job('s3', i)));
      verified.push(await child(ctx, s3Job('s3+verify', i)));
    }
    const l = best(local);
    const u = best(upload);
    const v = best(verified);
    const mbps = (s: number) => SIZE_MB / s;
    report.info(`write ${SIZE_MB} MB to the local folder (temp, fsync, rename), best of ${RUNS}`, mbps(l.seconds), 'MB/s', 0);
    report.info(`upload ${SIZE_MB} MB to s3rver (multipart 8 MiB x 2), best of ${RUNS}`, mbps(u.seconds), 'MB/s', 0);
    report.check('S3 upload throughput / local folder', mbps(u.seconds) / mbps(l.seconds), 'x', '>=', RATIO_TARGET, 2, 1);
    report.info('upload + read back and sha256 (what counts as offsite)', mbps(v.seconds), 'MB/s', 0);
    report.check('peak RSS of the uploading process', Math.max(u.peakRss, v.peakRss) / MB, 'MB', '<', RSS_TARGET_MB, 0);
  },
};
