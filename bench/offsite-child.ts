/**
 * Child of the offsite section: writes one backup file to a Storage (the local
 * folder, or S3 at the endpoint given) the way the offsite copier does, and
 * prints {seconds, peakRss} as JSON. A process of its own, so its peak RSS is
 * the copier's and not the S3 server's.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { LocalStorage } from '../src/storage/local-storage.js';
import { S3Storage } from '../src/storage/s3-storage.js';
import type { Storage } from '../src/storage/storage.js';
import { digestOf } from '../src/backup/offsite.js';

interface Job {
  mode: 'local' | 's3' | 's3+verify';
  file: string;
  key: string;
  local?: string;
  s3?: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string };
}

function peakRss(): number {
  const line = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(line?.[1] ?? 0) * 1024;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as Job;
  const storage: Storage =
    job.mode === 'local'
      ? new LocalStorage(job.local!)
      : new S3Storage({ ...job.s3!, prefix: 'bench/', region: 'us-east-1', forcePathStyle: true });
  const started = performance.now();
  await storage.write(job.key, fs.createReadStream(job.file, { highWaterMark: 1 << 20 }));
  if (job.mode === 's3+verify') await digestOf(await storage.read(job.key));
  const seconds = (performance.now() - started) / 1000;
  if (storage instanceof S3Storage) storage.close();
  process.stdout.write(JSON.stringify({ seconds, peakRss: peakRss() }));
}

await main();
