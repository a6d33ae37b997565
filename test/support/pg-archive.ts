/**
 * Helpers for tests of PostgreSQL continuous archiving: a sandbox whose one
 * database is a real PostgreSQL primary with archiving on, a table whose rows
 * record their commit time, and a way to read a data directory a restore left.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createSandbox, freePort, type ConfigDoc, type Sandbox } from './cli.js';
import { pgBinDir, type PgServer } from './postgres.js';

export const STAMPS_TABLE = 'CREATE TABLE stamps (id integer PRIMARY KEY, note text, committed_at timestamptz NOT NULL DEFAULT clock_timestamp())';

export function archiveConfig(pgServer: PgServer, port: number, archive: Record<string, unknown> = {}): ConfigDoc {
  return {
    logging: { level: 'INFO' },
    server: { host: '127.0.0.1', port },
    state: { path: 'data/dr-state.db' },
    disaster_recovery: {
      enabled: true,
      databases: { primary: { type: 'primary', priority: 0, url: pgServer.url({ database: 'shop' }) } },
      backup: { backup_dir: 'backups', enable_auto_backup: false, archive: { enabled: true, segment_interval: 1, ...archive } },
      failover: { enable_auto_failover: false },
      monitoring: { check_interval: 1, alert_rules: {} },
    },
  };
}

export async function archiveSandbox(t: { after(fn: () => void): void }, pgServer: PgServer, archive: Record<string, unknown> = {}): Promise<{ sandbox: Sandbox; port: number }> {
  await pgServer.createDatabase('shop');
  await pgServer.query(STAMPS_TABLE, [], 'shop');
  const sandbox = createSandbox(t);
  const port = await freePort();
  sandbox.writeConfig(archiveConfig(pgServer, port, archive));
  return { sandbox, port };
}

/** Inserts rows `from..to`, each its own transaction, `gapMs` apart; returns each row's commit time as the row recorded it. */
export async function insertStamps(pgServer: PgServer, from: number, to: number, gapMs: number): Promise<Map<number, Date>> {
  const client = new pg.Client({ connectionString: pgServer.url({ database: 'shop' }) });
  await client.connect();
  const times = new Map<number, Date>();
  try {
    for (let id = from; id <= to; id++) {
      const { rows } = await client.query<{ at: Date }>('INSERT INTO stamps (id, note) VALUES ($1, $2) RETURNING committed_at AS at', [id, `row ${id}`]);
      times.set(id, rows[0]!.at);
      await new Promise((r) => setTimeout(r, gapMs));
    }
  } finally {
    await client.end();
  }
  return times;
}

/** The moment halfway between two commits. */
export const between = (a: Date, b: Date): Date => new Date((a.getTime() + b.getTime()) / 2);

/** Starts a server on a data directory a restore left (as `postgres` when root, socket only), returns the ids in `stamps`, stops it. */
export async function idsInDataDir(dataDir: string): Promise<number[]> {
  const sock = mkdtempSync(path.join(os.tmpdir(), 'dr-sock-'));
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: Number(spawnSync('id', ['-u', 'postgres']).stdout.toString()), gid: Number(spawnSync('id', ['-g', 'postgres']).stdout.toString()) } : undefined;
  if (ids) chownSync(sock, ids.uid, ids.gid);
  const port = await freePort();
  const pgCtl = (args: string[]) => {
    const r = spawnSync(path.join(pgBinDir(), 'pg_ctl'), args, { ...ids, encoding: 'utf8', cwd: os.tmpdir() });
    if (r.status !== 0) throw new Error(`pg_ctl ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
  };
  pgCtl(['start', '-D', dataDir, '-l', path.join(sock, 'log'), '-w', '-t', '120', '-o', `-p ${port} -k ${sock} -c listen_addresses=''`]);
  try {
    const client = new pg.Client({ host: sock, port, user: 'postgres', database: 'shop' });
    await client.connect();
    try {
      return (await client.query<{ id: number }>('SELECT id FROM stamps ORDER BY id')).rows.map((r) => r.id);
    } finally {
      await client.end();
    }
  } finally {
    pgCtl(['stop', '-D', dataDir, '-m', 'fast', '-w']);
    rmSync(sock, { recursive: true, force: true });
  }
}

/** 1..n */
export const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
