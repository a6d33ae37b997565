import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { pgServerBinary } from './server-binaries.js';

/** The commit times a WAL segment holds, as pg_waldump reads them. */
export interface SegmentTimes {
  segment: string;
  first_commit: string | null;
  last_commit: string | null;
  commits: number;
  /** When the sidecar archived it (its own clock). */
  archived_at: string;
}

// `desc: COMMIT 2026-11-30 07:35:01.123456 UTC` (also ABORT, and the prepared variants).
const COMMIT_LINE = /desc: (?:COMMIT|COMMIT_PREPARED|ABORT|ABORT_PREPARED) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/;

/** The timestamps of every commit (and abort) record in pg_waldump's output. */
export function commitTimesIn(waldumpOutput: string): Date[] {
  const times: Date[] = [];
  for (const line of waldumpOutput.split('\n')) {
    const match = COMMIT_LINE.exec(line);
    if (match) times.push(new Date(`${match[1]!.replace(' ', 'T')}Z`));
  }
  return times;
}

/**
 * Reads a finished segment (gzipped as pg_receivewal writes it) with
 * pg_waldump. pg_waldump needs a file named after the segment, so the
 * segment is unpacked into a private scratch folder first (16 MiB).
 */
export async function readSegmentTimes(file: string, segment: string, now = new Date()): Promise<SegmentTimes> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-waldump-'));
  try {
    const plain = path.join(scratch, segment);
    const source = fs.createReadStream(file);
    await pipeline(file.endsWith('.gz') ? source.pipe(zlib.createGunzip()) : source, fs.createWriteStream(plain, { mode: 0o600 }));
    const output = await waldump(plain);
    const times = commitTimesIn(output);
    return {
      segment,
      first_commit: times[0]?.toISOString() ?? null,
      last_commit: times.at(-1)?.toISOString() ?? null,
      commits: times.length,
      archived_at: now.toISOString(),
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** pg_waldump's stdout; it exits non-zero at the end of the valid records (a switched segment's zeros), which is no error here. */
function waldump(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(pgServerBinary('pg_waldump'), ['--rmgr=Transaction', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', () => resolve(out));
  });
}
