/**
 * PostgreSQL continuous archiving and point-in-time restore, against a real
 * server and the real CLI:
 * - archive delay: a commit until the segment holding it is final (fsynced,
 *   published with its commit times) in the local archive, with
 *   `segment_interval: 1`; p50 and p99 over BENCH_PITR_COMMITS commits;
 * - time to restore BENCH_PITR_MB (default 1024 MB of table data) to a
 *   point in time with `restore --to-time --into`, against the same by hand:
 *   `pg_basebackup -Fp -X fetch` into a folder, then recovery replaying the
 *   same WAL (uncompressed) with `recovery_target_time`;
 * - peak RSS of the sidecar while archiving and of the restoring CLI (< 200 MB).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import pg from 'pg';
import { stringify } from 'yaml';
import { archiveConfig, STAMPS_TABLE } from '../test/support/pg-archive.js';
import { freePort, pgBinDir, startPostgres } from '../test/support/postgres.js';
import type { BenchContext, Section } from './context.js';
import { percentile } from './stats.js';
import type { Report } from './table.js';

const SIZE_MB = Number(process.env.BENCH_PITR_MB ?? 1024);
const COMMITS = Number(process.env.BENCH_PITR_COMMITS ?? 40);
const RSS_TARGET_MB = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the CLI under /usr/bin/time: wall seconds and peak RSS. */
function cli(ctx: BenchContext, cwd: string, args: string[]): Promise<{ code: number; seconds: number; peakMb: number; out: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, path.join(ctx.root, 'bin/disaster-recovery.js'), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('close', (code) => {
      const kb = Number(/MAXRSS (\d+)/.exec(out)?.[1] ?? NaN);
      resolve({ code: code ?? -1, seconds: (performance.now() - started) / 1000, peakMb: (kb * 1024) / 1e6, out });
    });
  });
}

function peakRssMb(pid: number): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return hwm ? (Number(hwm[1]) * 1024) / 1e6 : NaN;
}

/** Newest commit time archived (from the times records). */
function newestArchivedCommit(timesDir: string): number {
  let newest = 0;
  for (const f of existsSync(timesDir) ? readdirSync(timesDir) : []) {
    if (!f.endsWith('.json')) continue;
    const t = (JSON.parse(readFileSync(path.join(timesDir, f), 'utf8')) as { last_commit: string | null }).last_commit;
    if (t) newest = Math.max(newest, Date.parse(t));
  }
  return newest;
}

export const pgArchiveSection: Section = {
  title: 'PostgreSQL archive and point-in-time restore',
  budgetMs: 1_500_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const dir = path.join(ctx.tmp, 'pg-archive');
    mkdirSync(dir, { recursive: true });
    chmodSync(ctx.tmp, 0o755);
    chmodSync(dir, 0o755);
    const server = await startPostgres({ settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
    ctx.cleanup.add('pg-archive server', () => server.destroy(), () => undefined);
    await server.createDatabase('shop');
    await server.query(STAMPS_TABLE, [], 'shop');
    const port = await freePort();
    writeFileSync(path.join(dir, 'config.yaml'), stringify(archiveConfig(server, port)));
    const monitor = spawn(process.execPath, [path.join(ctx.root, 'bin/disaster-recovery.js'), 'start-monitoring', '--config', 'config.yaml'], { cwd: dir, stdio: 'ignore' });
    ctx.cleanup.add('pg-archive sidecar', async () => void monitor.kill('SIGKILL'), () => void monitor.kill('SIGKILL'));
    const backupDir = path.join(dir, 'backups/primary/archive');
    for (let i = 0; i < 300 && !existsSync(path.join(backupDir, 'wal')); i++) await sleep(100);

    // Data first, then the base backup the restore starts from.
    const load = performance.now();
    await server.query(`INSERT INTO stamps (id, note) SELECT g, repeat(md5(g::text), 30) FROM generate_series(1000001, 1000000 + ${Math.round((SIZE_MB * 1e6) / 1000)}) g`, [], 'shop');
    report.info(`load ${SIZE_MB} MB of rows (one INSERT)`, (performance.now() - load) / 1000, 's', 1);
    const size = Number((await server.query<{ n: string }>("SELECT pg_database_size('shop') AS n"))[0]!.n);
    report.info('database size', size / 1e6, 'MB', 0);
    const backup = await cli(ctx, dir, ['backup', '--config', 'config.yaml']);
    if (backup.code !== 0) throw new Error(`backup failed: ${backup.out}`);
    report.info('base backup (pg_basebackup, gzip), wall', backup.seconds, 's', 1);

    // By hand, the same starting point: pg_basebackup into a folder (before the commits the restore goes between).
    const manual = path.join(dir, 'manual');
    const asPostgres = process.getuid?.() === 0 ? { uid: Number(spawnSync('id', ['-u', 'postgres']).stdout.toString()), gid: Number(spawnSync('id', ['-g', 'postgres']).stdout.toString()) } : {};
    const bin = (name: string) => path.join(pgBinDir(), name);
        const baseStarted = performance.now();
    const bb = spawnSync(bin('pg_basebackup'), ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-D', manual, '-Fp', '-X', 'fetch', '--checkpoint=fast'], { encoding: 'utf8' });
    if (bb.status !== 0) throw new Error(`pg_basebackup failed: ${bb.stderr}`);
    const baseSeconds = (performance.now() - baseStarted) / 1000;

    // Archive delay: one commit at a time, until the archive holds it.
    const client = new pg.Client({ connectionString: server.url({ database: 'shop' }) });
    await client.connect();
    const delays: number[] = [];
    const commits = new Map<number, number>();
    try {
      for (let i = 1; i <= COMMITS; i++) {
        const { rows } = await client.query<{ at: Date }>('INSERT INTO stamps (id, note) VALUES ($1, $2) RETURNING clock_timestamp() AS at', [i, `row ${i}`]);
        const committed = Date.now();
        commits.set(i, rows[0]!.at.getTime());
        while (newestArchivedCommit(path.join(backupDir, 'times')) < rows[0]!.at.getTime()) {
          if (Date.now() - committed > 60_000) throw new Error('a commit did not reach the archive within 60 s');
          await sleep(10);
        }
        delays.push((Date.now() - committed) / 1000);
        await sleep(Math.random() * 500);
      }
    } finally {
      await client.end();
    }
    report.info(`archive delay commit -> segment final in the local archive, p50 (segment_interval 1 s, ${COMMITS} commits)`, percentile(delays, 50), 's', 2);
    report.info('archive delay p99', percentile(delays, 99), 's', 2);
    report.check('peak RSS of the archiving sidecar', peakRssMb(monitor.pid!), 'MB', '<', RSS_TARGET_MB, 0);
    const target = new Date((commits.get(COMMITS / 2)! + commits.get(COMMITS / 2 + 1)!) / 2);

    // The sidecar's restore to that moment, into a folder.
    const into = path.join(dir, 'restored');
    const restore = await cli(ctx, dir, ['restore', '--to-time', target.toISOString(), '--into', into, '--config', 'config.yaml']);
    if (restore.code !== 0) throw new Error(`restore failed: ${restore.out}`);
    report.info(`restore --to-time --into (${(size / 1e6).toFixed(0)} MB database)`, restore.seconds, 's', 1);
    report.check('peak RSS of the restoring CLI', restore.peakMb, 'MB', '<', RSS_TARGET_MB, 0);
    monitor.kill('SIGTERM');

    // By hand: the same WAL uncompressed, recovery of that base backup to the same time.
    const walDir = path.join(dir, 'manual-wal');
    mkdirSync(walDir, { mode: 0o755 });
    for (const f of readdirSync(path.join(backupDir, 'wal'))) {
      const body = readFileSync(path.join(backupDir, 'wal', f));
      writeFileSync(path.join(walDir, f.replace(/\.gz$/, '')), f.endsWith('.gz') ? zlib.gunzipSync(body) : body);
    }
    const stamp = target.toISOString().replace('T', ' ').replace('Z', '+00');
    writeFileSync(path.join(manual, 'postgresql.auto.conf'), `restore_command = 'cp "${walDir}/%f" "%p"'\nrecovery_target_time = '${stamp}'\nrecovery_target_action = 'promote'\n`, { flag: 'a' });
    writeFileSync(path.join(manual, 'recovery.signal'), '');
    if ('uid' in asPostgres) spawnSync('chown', ['-R', `${asPostgres.uid}:${asPostgres.gid}`, manual, walDir]);
    if ('uid' in asPostgres) chownSync(dir, asPostgres.uid!, asPostgres.gid!);
    const sock = path.join(dir, 'sock');
    mkdirSync(sock, { mode: 0o755 });
    if ('uid' in asPostgres) chownSync(sock, asPostgres.uid!, asPostgres.gid!);
    const mport = await freePort();
    const replayStarted = performance.now();
    const started = spawnSync(bin('pg_ctl'), ['start', '-D', manual, '-l', path.join(sock, 'log'), '-w', '-t', '3600', '-o', `-p ${mport} -k ${sock} -c listen_addresses=''`], { ...asPostgres, encoding: 'utf8' });
    if (started.status !== 0) throw new Error(`manual recovery did not start: ${started.stdout}${started.stderr}`);
    try {
      for (;;) {
        const c = new pg.Client({ host: sock, port: mport, user: 'postgres', database: 'postgres' });
        await c.connect();
        const r = (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
        await c.end();
        if (!r) break;
        await sleep(100);
      }
    } finally {
      spawnSync(bin('pg_ctl'), ['stop', '-D', manual, '-m', 'fast', '-w'], { ...asPostgres });
    }
    const handSeconds = baseSeconds + (performance.now() - replayStarted) / 1000;
    report.info('the sidecar: base backup + restore --to-time --into', backup.seconds + restore.seconds, 's', 1);
    report.info(`by hand: pg_basebackup -Fp -X fetch (${baseSeconds.toFixed(1)} s) + recovery to the same time`, handSeconds, 's', 1);
    report.info('by hand: the replay alone', (performance.now() - replayStarted) / 1000, 's', 1);
    rmSync(manual, { recursive: true, force: true });
    rmSync(into, { recursive: true, force: true });
  },
};
