/**
 * Backup throughput and memory: `disaster-recovery backup` (its own process,
 * as a user runs it) of a BENCH_BACKUP_MB (default 1024) MB SQLite database
 * and of as large a PostgreSQL database, side by side with what an operator
 * would script: `sqlite3 .backup` then `gzip`, and `pg_dump | gzip`, at the
 * same gzip level (6) and, like the sidecar, fsyncing the result.
 * Targets: throughput >= 0.9 x the baseline's; peak RSS of the sidecar < 200 MB.
 * Throughput = database size / wall time (MB = 10^6 bytes).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { IMAGES_SCHEMA } from '../src/demo-data.js';
import { pgBinary } from '../src/engines/pg-tools.js';
import { startPostgres, type PgServer } from '../test/support/postgres.js';
import type { BenchContext, Section } from './context.js';
import type { Report } from './table.js';
import { SqliteStateStore } from '../src/state/sqlite-store.js';

const SIZE_MB = Number(process.env.BENCH_BACKUP_MB ?? 1024);
const RUNS = 2;
const RSS_TARGET_MB = 200;
const RATIO_TARGET = 0.9;
const MB = 1_000_000;

interface Run {
  seconds: number;
  /** Peak RSS (VmHWM) of the watched process(es), bytes. */
  peakRss: number;
  outputBytes: number;
}

/** The crawler's `images` table, grown in SQL (fast) with random hashes and URLs, up to `bytes`. */
export function makeSqlite(file: string, bytes: number): void {
  const db = new Database(file);
  try {
    // Bulk load: no journal, a cache that holds the indexes; the WAL mode of a crawler's database at the end.
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -2000000');
    db.exec(IMAGES_SCHEMA);
    const batch = db.prepare(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
      INSERT INTO images (url, source_page, file_path, file_size, width, height, format, sha256)
      SELECT 'https://images.example/' || lower(hex(randomblob(8))) || '.jpg', 'https://pages.example/' || (abs(random()) % 100000),
             'images/' || lower(hex(randomblob(4))) || '.jpg', abs(random()) % 500000, 640, 480, 'jpeg', lower(hex(randomblob(32))) FROM c`);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    while ((db.pragma('page_count', { simple: true }) as number) * pageSize < bytes) batch.run();
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
}

/** The same table in PostgreSQL, about `bytes` of pg_database_size: rows first, indexes after (a bulk load). */
async function makePostgres(server: PgServer, database: string, bytes: number): Promise<number> {
  await server.createDatabase(database);
  await server.query(
    `CREATE TABLE images (id bigserial, url text NOT NULL, source_page text, file_path text, file_size int, width int, height int,
       format text, sha256 text, status text NOT NULL DEFAULT 'downloaded', created_at timestamptz NOT NULL DEFAULT now())`,
    [],
    database,
  );
  const size = async () => Number((await server.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n', [], database))[0]!.n);
  // The heap is about half of the database once the indexes are built.
  while ((await size()) < bytes * 0.5) {
    await server.query(
      `SET synchronous_commit = off;
       INSERT INTO images (url, source_page, file_path, file_size, width, height, format, sha256)
       SELECT 'https://images.example/' || md5(random()::text) || '.jpg', 'https://pages.example/' || (random() * 100000)::int,
              'images/' || left(md5(random()::text), 8) || '.jpg', (random() * 500000)::int, 640, 480, 'jpeg', md5(random()::text) || md5(random()::text)
       FROM generate_series(1, 300000)`,
      [],
      database,
    );
  }
  await server.query(
    `SET maintenance_work_mem = '512MB';
     ALTER TABLE images ADD PRIMARY KEY (id); CREATE UNIQUE INDEX images_url ON images (url);
     CREATE INDEX images_sha256 ON images (sha256); CREATE INDEX images_created_at ON images (created_at); CHECKPOINT`,
    [],
    database,
  );
  return size();
}

/** VmHWM of a process and its descendants (the largest), read from /proc while they run. */
function watchPeakRss(root: number, descendants: boolean): { stop(): number } {
  let peak = 0;
  const sample = () => {
    const pids = descendants ? [root, ...descendantsOf(root)] : [root];
    for (const pid of pids) {
      try {
        const kib = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        peak = Math.max(peak, kib * 1024);
      } catch {
        // exited between the listing and the read
      }
    }
  };
  const timer = setInterval(sample, 20);
  sample();
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

function descendantsOf(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent !== pid) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(root);
  return found;
}

/** Runs a command to completion, timing it and watching its memory. */
function timed(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; tree: boolean }): Promise<{ seconds: number; peakRss: number; stdout: string }> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const watch = watchPeakRss(child.pid!, options.tree);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const peakRss = watch.stop();
      if (code !== 0) reject(new Error(`${path.basename(command)} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else resolve({ seconds: (performance.now() - started) / 1000, peakRss, stdout });
    });
  });
}

async function ours(ctx: BenchContext, dir: string, database: string): Promise<Run> {
  const bin = path.join(ctx.root, 'bin', 'disaster-recovery.js');
  const env = { ...process.env };
  delete env.DR_CONFIG;
  const r = await timed(process.execPath, [bin, 'backup', '--database', database, '--json', '--config', 'config.yaml'], { cwd: dir, env, tree: false });
  const record = JSON.parse(r.stdout) as { path: string; size_bytes: number };
  await rm(record.path);
  await rm(`${record.path}.manifest.json`);
  return { seconds: r.seconds, peakRss: r.peakRss, outputBytes: record.size_bytes };
}

async function baseline(dir: string, script: string, output: string, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  const r = await timed('sh', ['-c', `set -e; ${script}; sync ${output}`], { cwd: dir, env, tree: true });
  const outputBytes = statSync(path.join(dir, output)).size;
  await rm(path.join(dir, output));
  return { seconds: r.seconds, peakRss: r.peakRss, outputBytes };
}

function reportEngine(report: Report, label: string, sourceBytes: number, mine: Run[], theirs: Run[], baselineName: string): void {
  const best = (runs: Run[]) => Math.min(...runs.map((r) => r.seconds));
  const rate = (runs: Run[]) => sourceBytes / MB / best(runs);
  report.info(`${label}: database size`, sourceBytes / MB, 'MB', 0);
  report.info(`${label}: disaster-recovery backup, best of ${mine.length}`, rate(mine), 'MB/s', 1);
  report.info(`${label}: ${baselineName}, best of ${theirs.length}`, rate(theirs), 'MB/s', 1);
  report.check(`${label}: throughput, ours / baseline`, rate(mine) / rate(theirs), 'x', '>=', RATIO_TARGET, 2, 1);
  report.check(`${label}: peak RSS of the sidecar process (VmHWM)`, Math.max(...mine.map((r) => r.peakRss)) / MB, 'MB', '<', RSS_TARGET_MB, 1);
  report.info(`${label}: peak RSS of the baseline's largest process`, Math.max(...theirs.map((r) => r.peakRss)) / MB, 'MB', 1);
  report.info(`${label}: backup size, ours / baseline`, `${(mine[0]!.outputBytes / MB).toFixed(1)} MB / ${(theirs[0]!.outputBytes / MB).toFixed(1)} MB`);
}

export const backupSection: Section = {
  title: `backup of a ${SIZE_MB} MB SQLite and a ${SIZE_MB} MB PostgreSQL database (own process, vs sqlite3 .backup + gzip, pg_dump | gzip)`,
  budgetMs: 540_000,
  async run(ctx: BenchContext, report: Report): Promise<void> {
    const dir = path.join(ctx.tmp, 'backup-bench');
    await mkdir(dir, { recursive: true });
    const sqliteFile = path.join(dir, 'images.db');
    const generating = performance.now();
    makeSqlite(sqliteFile, SIZE_MB * MB);
    const server = await startPostgres({ settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
    ctx.cleanup.add(`PostgreSQL server on port ${server.port}`, () => server.destroy());
    const pgBytes = await makePostgres(server, 'images', SIZE_MB * MB);
    report.info('time to generate both databases', (performance.now() - generating) / 1000, 's', 0);
    const pgUrl = server.url({ database: 'images' });
    await writeFile(
      path.join(dir, 'config.yaml'),
      stringify({
        logging: { level: 'error' },
        state: { path: path.join(dir, 'dr-state.db') },
        disaster_recovery: {
          enabled: true,
          databases: { sqlite: { type: 'primary', priority: 0, url: `sqlite:///${sqliteFile}` }, postgres: { type: 'secondary', priority: 1, url: pgUrl } },
          backup: { backup_dir: path.join(dir, 'backups'), enable_auto_backup: false, max_backups: 100, enable_compression: true },
        },
      }),
    );

    // The CLI's `backup` refuses a missing state store: made here as start-monitoring would make it.
    new SqliteStateStore(path.join(dir, 'dr-state.db'), { create: true }).closeNow();
    const sqliteRuns = { mine: [] as Run[], theirs: [] as Run[] };
    const sqliteBaseline = `sqlite3 ${sqliteFile} ".backup copy.db"; gzip -6 -c copy.db > copy.db.gz; rm copy.db`;
    for (let i = 0; i < RUNS; i++) {
      sqliteRuns.theirs.push(await baseline(dir, sqliteBaseline, 'copy.db.gz'));
      sqliteRuns.mine.push(await ours(ctx, dir, 'sqlite'));
    }
    reportEngine(report, 'SQLite', statSync(sqliteFile).size, sqliteRuns.mine, sqliteRuns.theirs, 'sqlite3 .backup + gzip -6');
    for (const side of ['', '-wal', '-shm']) await rm(`${sqliteFile}${side}`, { force: true });

    const pgRuns = { mine: [] as Run[], theirs: [] as Run[] };
    const pgBaseline = `${pgBinary('pg_dump')} --dbname=images | gzip -6 > dump.sql.gz`;
    const pgEnv = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(server.port), PGUSER: 'postgres' };
    for (let i = 0; i < RUNS; i++) {
      pgRuns.theirs.push(await baseline(dir, pgBaseline, 'dump.sql.gz', pgEnv));
      pgRuns.mine.push(await ours(ctx, dir, 'postgres'));
    }
    reportEngine(report, 'PostgreSQL', pgBytes, pgRuns.mine, pgRuns.theirs, 'pg_dump | gzip -6');
    report.note(
      `backup: each side run ${RUNS} times alternately on the same data (page cache warm after the first run); the sidecar's time ` +
        'includes its start-up, the consistent snapshot, per-table row counts, sha256 and fsync; the baselines end with `sync FILE`. ' +
        'The sidecar writes PostgreSQL as pg_dump --format=custom --compress=0 gzipped by itself; the baseline is plain SQL. ' +
        'Peak RSS of the sidecar is its node process only (pg_dump is a child of both sides).',
    );
  },
};
