/**
 * SQLite WAL shipping: what following a primary costs and how far behind a
 * secondary is, beside the whole-file copy it replaces. The sidecar runs in
 * this process; the application writes from a child process. Bytes written
 * are this process's write(2) bytes (/proc/self/io wchar: the sidecar, its
 * worker threads, its state store and log), CPU is this process's.
 * Litestream's default (ships every 1 s) is the reference for the intervals.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { childWriter, padDatabase, sleep, sqliteCluster, startSidecar, type ChildWriter } from '../test/support/sqlite-cluster.js';
import { waitFor } from '../test/support/failover.js';
import type { BenchContext, Section } from './context.js';
import { percentile } from './stats.js';
import type { Report } from './table.js';

const IDLE_MB = Number(process.env.BENCH_WAL_IDLE_MB ?? 1000);
const IDLE_SECONDS = 30;
const STEADY_SECONDS = 15;

function writtenBytes(): number {
  const io = fs.readFileSync('/proc/self/io', 'utf8');
  return Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? NaN);
}

function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** When each acknowledged id was first seen on the secondary: polled every few ms through a connection of its own. */
function lagPoller(file: string, writer: ChildWriter): { stop(): number[] } {
  const db = new Database(file, { fileMustExist: true, timeout: 5000 });
  const newest = db.prepare('SELECT max(id) FROM images').pluck();
  const lags: number[] = [];
  let seen = 0;
  const timer = setInterval(() => {
    const top = (newest.get() as number | null) ?? 0;
    const now = Date.now();
    for (let id = Math.max(seen + 1, top - 100_000); id <= top; id++) {
      const acked = writer.acks.get(id);
      if (acked !== undefined) lags.push(Math.max(0, now - acked));
    }
    seen = Math.max(seen, top);
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      db.close();
      return lags.sort((a, b) => a - b);
    },
  };
}

async function steadyRun(ctx: BenchContext, report: Report, interval: number, withFailover: boolean, rowBytes = 0): Promise<void> {
  const cluster = sqliteCluster({ after: (fn) => void ctx.cleanup.add(`WAL shipping sandbox ${interval}`, fn) }, { failover: { sync_interval: interval } });
  const sidecar = await startSidecar(cluster.load());
  const stopSidecar = ctx.cleanup.add('WAL shipping sidecar', () => sidecar.stop());
  try {
    await waitFor('first generation', 30_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
    const writer = childWriter(cluster.file('primary'), 1000, { rowBytes });
    const stopWriter = ctx.cleanup.add('WAL shipping writer', () => writer.stop());
    const poller = lagPoller(cluster.file('secondary1'), writer);
    const totals = sidecar.service.copies.totals;
    const before = { bytes: writtenBytes(), cpu: cpuSeconds(), frames: totals.frames, shipped: totals.shippedPageBytes };
    let largestWal = 0;
    const walWatch = setInterval(() => {
      try {
        largestWal = Math.max(largestWal, fs.statSync(`${cluster.file('primary')}-wal`).size);
      } catch {
        // between checkpoints
      }
    }, 20);
    await sleep(STEADY_SECONDS * 1000);
    clearInterval(walWatch);
    const walMb = ((totals.frames - before.frames) * (4096 + 24)) / 1048576;
    const written = writtenBytes() - before.bytes;
    const cpu = cpuSeconds() - before.cpu;
    const shippedMb = (totals.shippedPageBytes - before.shipped) / 1048576;
    if (withFailover) {
      const deletedAt = Date.now();
      for (const side of ['', '-wal', '-shm']) fs.rmSync(cluster.file('primary') + side, { force: true });
      const started = performance.now();
      let record;
      while (!(record = (await sidecar.service.history(5)).find((r) => r.result === 'success'))) {
        if (performance.now() - started > 30_000) throw new Error('no failover within 30 s');
        await sleep(20);
      }
      const lags = poller.stop();
      await stopWriter();
      const present = new Set((new Database(cluster.file('secondary1'), { readonly: true }).prepare('SELECT id FROM images').pluck().all() as number[]));
      const lost = [...writer.acks].filter(([id]) => !present.has(id));
      const lostBefore = lost.filter(([, at]) => at < deletedAt);
      report.check('failover after the primary file is deleted: acknowledged rows lost (RPO)', lostBefore.length, 'rows', '<=', 0, 0);
      report.info('  rows acknowledged after the deletion (written into the deleted file) and not on secondary1', lost.length - lostBefore.length, 'rows', 0);
      report.info('  history: data sync', record.dataSync?.detail ?? '-');
      reportSteady(report, `sync_interval ${interval} s`, lags, written, walMb, shippedMb, cpu, largestWal);
    } else {
      const lags = poller.stop();
      await stopWriter();
      reportSteady(report, `sync_interval ${interval} s${rowBytes ? `, rows of ${rowBytes} bytes (new pages)` : ''}`, lags, written, walMb, shippedMb, cpu, largestWal);
    }
  } finally {
    await stopSidecar();
  }
}

function reportSteady(report: Report, at: string, lags: number[], written: number, walMb: number, shippedMb: number, cpu: number, largestWal: number): void {
  const interval = Number(/sync_interval ([\d.]+)/.exec(at)?.[1]);
  report.check(`${at}: lag p50 (ack -> visible on secondary1)`, percentile(lags, 50) / 1000, 's', '<=', 1.5 * interval, 2, 1);
  report.check(`${at}: lag p99`, percentile(lags, 99) / 1000, 's', '<=', 1.5 * interval, 2, 1);
  report.info(`${at}: WAL the application wrote / rows measured`, `${walMb.toFixed(1)} MB / ${lags.length}`);
  report.check(`${at}: bytes the sidecar wrote per byte of WAL (1 secondary)`, written / (walMb * 1048576), '', '<=', 1.2, 2, 1);
  report.info(`${at}: largest WAL of the primary`, largestWal / 1048576, 'MB', 1);
  // The whole process's CPU: the sidecar's probes and this bench's poller of secondary1 (every 5 ms) included.
  report.info(`${at}: CPU per MB of WAL shipped (pages written after keeping the newest image of each: ${shippedMb.toFixed(1)} MB)`, walMb > 0 ? (cpu * 1000) / walMb : NaN, 'ms', 0);
}

export const walShippingSection: Section = {
  title: `SQLite WAL shipping (idle ${IDLE_MB} MB primary; steady writer at 1 s and 0.2 s)`,
  budgetMs: 420_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    // Idle: the whole copy that starts a generation, then what following costs while nobody writes.
    const cluster = sqliteCluster({ after: (fn) => void ctx.cleanup.add('WAL shipping idle sandbox', fn) }, { failover: { sync_interval: 1 } });
    padDatabase(cluster.file('primary'), IDLE_MB);
    const size = fs.statSync(cluster.file('primary')).size;
    const startBytes = writtenBytes();
    const started = performance.now();
    const sidecar = await startSidecar(cluster.load());
    const stopSidecar = ctx.cleanup.add('WAL shipping idle sidecar', () => sidecar.stop());
    try {
      await waitFor('the first generation copy', 240_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
      const copyBytes = writtenBytes() - startBytes;
      report.info(`first generation: whole copy of the ${(size / 1048576).toFixed(0)} MB primary`, `${(copyBytes / 1048576).toFixed(0)} MB written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      report.info('whole-file copies as before (one per sync_interval of 60 s): bytes per minute', copyBytes / 1048576, 'MB', 0);
      const idleStart = writtenBytes();
      await sleep(IDLE_SECONDS * 1000);
      const perMinute = ((writtenBytes() - idleStart) * 60) / IDLE_SECONDS;
      report.check('WAL shipping, idle primary: bytes the sidecar writes per minute', perMinute / 1048576, 'MB', '<', 1, 3);
    } finally {
      await stopSidecar();
    }
    await steadyRun(ctx, report, 1, true);
    await steadyRun(ctx, report, 0.2, false);
    // The worst case for bytes: every transaction fills new pages, so keeping the newest image of each saves nothing.
    await steadyRun(ctx, report, 1, false, 2000);
  },
};
