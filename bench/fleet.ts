/**
 * The databases the bench probes: 50 SQLite files (WAL, the crawler's `images`
 * table, a few hundred rows each) and 5 databases on ONE PostgreSQL server,
 * plus the config text that names them all.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { IMAGES_SCHEMA } from '../src/demo-data.js';
import { startPostgres } from '../test/support/postgres.js';
import type { Cleanup } from './cleanup.js';

export const SQLITE_FILES = 50;
export const PG_DATABASES = 5;
export const ROWS_PER_FILE = 300;

export interface FleetDatabase {
  name: string;
  engine: 'sqlite' | 'postgresql';
  url: string;
}

export interface ConfigOptions {
  /** server.port (0: any free port). */
  port: number;
  statePath: string;
  checkIntervalSeconds: number;
  logLevel?: string;
}

export interface Fleet {
  /** In priority order; the first is the primary. */
  databases: FleetDatabase[];
  pgPort: number;
  /** A complete config file naming every database of the fleet. */
  configYaml(options: ConfigOptions): string;
}

export async function createFleet(tmp: string, cleanup: Cleanup): Promise<Fleet> {
  const dir = path.join(tmp, 'fleet');
  await mkdir(dir, { recursive: true });
  const databases: FleetDatabase[] = [];
  for (let i = 1; i <= SQLITE_FILES; i++) {
    const name = `sqlite${String(i).padStart(2, '0')}`;
    const file = path.join(dir, `${name}.db`);
    makeSqliteFile(file, i);
    databases.push({ name, engine: 'sqlite', url: `sqlite:///${file}` });
  }

  const pg = await startPostgres();
  cleanup.add(`PostgreSQL server on port ${pg.port}`, () => pg.destroy());
  for (let i = 1; i <= PG_DATABASES; i++) {
    const name = `pg${i}`;
    await pg.createDatabase(`bench_${name}`);
    databases.push({ name, engine: 'postgresql', url: pg.url({ database: `bench_${name}` }) });
  }

  return {
    databases,
    pgPort: pg.port,
    configYaml: (options) => fleetConfigYaml(databases, path.join(tmp, 'backups'), options),
  };
}

function makeSqliteFile(file: string, seed: number): void {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(IMAGES_SCHEMA);
    const insert = db.prepare(
      'INSERT INTO images (url, source_page, file_path, file_size, width, height, format, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (let n = 0; n < ROWS_PER_FILE; n++) {
        const id = `${seed}-${n}`;
        insert.run(
          `https://images.example/${id}.jpg`,
          `https://pages.example/${seed}/${n >> 4}`,
          `images/${id}.jpg`,
          10_000 + ((seed * 7919 + n * 104_729) % 500_000),
          640 + (n % 7) * 160,
          480 + (n % 5) * 120,
          n % 3 === 0 ? 'png' : 'jpeg',
          (BigInt(seed) * 1_000_003n + BigInt(n)).toString(16).padStart(64, '0'),
        );
      }
    })();
  } finally {
    db.close();
  }
}

function fleetConfigYaml(databases: FleetDatabase[], backupDir: string, options: ConfigOptions): string {
  const entries = databases.map((db, i) => [
    db.name,
    { name: db.name, type: i === 0 ? 'primary' : 'secondary', priority: i, url: db.url },
  ]);
  return stringify({
    logging: { level: options.logLevel ?? 'error' },
    server: { host: '127.0.0.1', port: options.port },
    state: { path: options.statePath },
    disaster_recovery: {
      enabled: true,
      databases: Object.fromEntries(entries),
      // Nothing but probing: no automatic backup or failover may run during a measurement.
      backup: { backup_dir: backupDir, enable_auto_backup: false },
      // sync_interval: the SQLite secondaries' periodic copy of the primary is not part of these measurements.
      failover: { enable_auto_failover: false, sync_interval: 3600 },
      monitoring: { check_interval: options.checkIntervalSeconds, probe_timeout: 5 },
    },
  });
}
