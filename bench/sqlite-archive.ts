/**
 * SQLite continuous archiving: the archive delay (a commit acknowledged to the
 * application -> the segment holding it durable under backup_dir), the first
 * snapshot of a large primary, the sidecar's peak RSS while it archives, and
 * a point-in-time restore of that database through the real CLI (time and
 * peak RSS by /usr/bin/time). The sidecar runs as a real subprocess
 * (start-monitoring); the application writes from a child process.
 * Litestream's defaults are the reference: sync every 1 s, a snapshot every 24 h.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArchiveKey } from '../src/engines/sqlite/archive-layout.js';
import { CLI_BIN, freePort } from '../test/support/cli.js';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { childWriter, sleep, sqliteCluster } from '../test/support/sqlite-cluster.js';
import { countImages } from '../test/support/sqlite.js';
import { waitFor } from '../test/support/failover.js';
import type { BenchContext, Section } from './context.js';
import { percentile } from './stats.js';
import type { Report } from './table.js';

const DB_MB = Number(process.env.BENCH_ARCHIVE_MB ?? 1000);
const WRITE_SECONDS = 20;
const SYNC_INTERVAL = 1;

/** Segments as they appear (polled every 5 ms): name -> [time in its name, when it was first seen]. */
function segmentWatch(archiveDir: string): { seen: Map<string, { committedMs: number; seenAt: number }>; stop(): void } {
  const seen = new Map<string, { committedMs: number; seenAt: number }>();
  const timer = setInterval(() => {
    let generations: string[];
    try {
      generations = fs.readdirSync(archiveDir).filter((g) => !g.startsWith('.'));
    } catch {
      return;
    }
    const now = Date.now();
    for (const generation of generations) {
      for (const name of fs.readdirSync(path.join(archiveDir, generation))) {
        const key = parseArchiveKey('primary', `primary/archive/${generation}/${name}`);
        if (key.kind === 'segment' && !seen.has(name)) seen.set(name, { committedMs: key.committedMs, seenAt: now });
      }
    }
  }, 5);
  return { seen, stop: () => clearInterval(timer) };
}

function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN) / 1024;
}

/** The real CLI under /usr/bin/time: exit code, wall seconds, peak RSS. */
function timedCli(cwd: string, args: string[]): Promise<{ code: number | null; seconds: number; peakRssMb: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIMED %e %M', process.execPath, CLI_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /TIMED ([\d.]+) (\d+)/.exec(output);
      resolve({ code, seconds: Number(m?.[1] ?? NaN), peakRssMb: Number(m?.[2] ?? NaN) / 1024, output });
    });
  });
}

/** Pads to about `mb` MB with rows of random hex (compresses about 2:1, as hashes and URLs do; repeated bytes would flatter gzip). */
function padWithRandom(file: string, mb: number): void {
  const db = new Database(file);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS padding (id INTEGER PRIMARY KEY, blob TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO padding (blob) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < mb * 1000; i++) insert.run(randomBytes(500).toString('hex'));
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

export const sqliteArchiveSection: Section = {
  title: `SQLite continuous archiving (${DB_MB} MB primary, sync_interval ${SYNC_INTERVAL} s) and restore --to-time`,
  budgetMs: 600_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const cluster = sqliteCluster({ after: (fn) => void ctx.cleanup.add('archive sandbox', fn) }, { secondaries: [], failover: { sync_interval: SYNC_INTERVAL } });
    const primary = cluster.file('primary');
    padWithRandom(primary, DB_MB);
    const sizeMb = fs.statSync(primary).size / 1048576;
    const port = await freePort();
    cluster.doc.server.port = port;
    cluster.doc.disaster_recovery.backup = { ...cluster.doc.disaster_recovery.backup, archive: { enabled: true } };
    cluster.sandbox.writeConfig(cluster.doc, path.relative(cluster.sandbox.dir, cluster.configPath));
    const archiveDir = cluster.sandbox.path('backups/primary/archive');

    const started = performance.now();
    const sidecar = await cluster.sandbox.startMonitoring({ port, args: ['--config', cluster.configPath], startTimeoutMs: 60_000 });
    const stopSidecar = ctx.cleanup.add('archive sidecar', async () => {
      await sidecar.stop('SIGTERM', 30_000);
    });
    await waitFor('the first generation', 300_000, () => fs.existsSync(archiveDir) && fs.readdirSync(archiveDir).some((g) => fs.existsSync(path.join(archiveDir, g, 'generation.json'))));
    const generation = fs.readdirSync(archiveDir).find((g) => fs.existsSync(path.join(archiveDir, g, 'generation.json')))!;
    const snapshotMb = fs.statSync(path.join(archiveDir, generation, 'snapshot.db.gz')).size / 1048576;
    report.info(`first generation: snapshot of the ${sizeMb.toFixed(0)} MB primary (gzip level 1) from the sidecar's start`, `${snapshotMb.toFixed(0)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const watch = segmentWatch(archiveDir);
    const writer = childWriter(primary, 1_000_000, { gapMs: 20 });
    const stopWriter = ctx.cleanup.add('archive writer', () => writer.stop());
    await sleep(WRITE_SECONDS * 1000);
    await stopWriter();
    await waitFor('the last commits archived', 30_000, () => Math.max(0, ...[...watch.seen.values()].map((s) => s.committedMs)) > Math.max(...writer.acks.values()));
    watch.stop();
    const segments = [...watch.seen.values()].sort((a, b) => a.committedMs - b.committedMs);
    const delays: number[] = [];
    for (const ackedAt of writer.acks.values()) {
      const holding = segments.find((s) => s.committedMs >= ackedAt);
      if (holding) delays.push(holding.seenAt - ackedAt);
    }
    delays.sort((a, b) => a - b);
    report.check(`archive delay p50 (commit acknowledged -> segment durable), sync_interval ${SYNC_INTERVAL} s`, percentile(delays, 50) / 1000, 's', '<=', 1.5 * SYNC_INTERVAL, 2, 1);
    report.check('archive delay p99', percentile(delays, 99) / 1000, 's', '<=', 1.5 * SYNC_INTERVAL, 2, 1);
    report.info('  commits measured / segments written', `${delays.length} / ${segments.length}`);
    report.check('sidecar peak RSS while archiving (snapshot included)', peakRssMb(sidecar.pid), 'MB', '<', 200, 0);
    await stopSidecar();

    // A moment in the middle of the writes: the snapshot and about half the segments.
    const middle = segments[Math.floor(segments.length / 2)]!;
    const expected = 20 + [...writer.acks.values()].filter((at) => at <= middle.committedMs).length;
    const into = cluster.sandbox.path('restored.db');
    const restored = await timedCli(cluster.sandbox.dir, ['restore', '--to-time', new Date(middle.committedMs).toISOString(), '--into', into, '--config', cluster.configPath]);
    if (restored.code !== 0) throw new Error(`restore --to-time failed: ${restored.output}`);
    report.info(`restore --to-time of the ${sizeMb.toFixed(0)} MB database (snapshot + ${Math.floor(segments.length / 2) + 1} segments, integrity_check included)`, restored.seconds, 's', 1);
    report.check('  restore peak RSS (the CLI process)', restored.peakRssMb, 'MB', '<', 200, 0);
    report.info('  rows restored / acknowledged at or before that moment', `${countImages(into)} / ${expected}`);
    const copy = performance.now();
    fs.copyFileSync(primary, cluster.sandbox.path('plain-copy.db'));
    report.info('  for scale: cp of the database file', (performance.now() - copy) / 1000, 's', 1);
  },
};
