import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import pg from 'pg';
import type { DatabaseConfig } from '../../config/load.js';
import { ScratchUnavailableError, type Dump, type EngineBackup, type ScratchCheck } from '../../backup/engine-backup.js';
import { startPgTool, toolReason } from '../../backup/pg-process.js';
import { countRows, describePgError, pgTargetOf } from '../../backup/pg-session.js';
import { postgresBackup } from '../../backup/postgres-backup.js';
import { DrError } from '../../errors.js';
import { withClient, type PgTarget } from '../pg-client.js';
import { pgToolEnv } from '../pg-tools.js';
import { spawn } from 'node:child_process';
import { RecoveryServer, type RecoveryTarget, type WalSource } from './recovery-server.js';
import { archiveRefusal, readArchivePrivileges } from './replication-slot.js';
import { pgServerBinary } from './server-binaries.js';
import { handOver } from './server-user.js';

const RECOVERY_TIMEOUT_MS = 6 * 3600_000;

/**
 * Base backups for point-in-time restore: `pg_basebackup` of the whole
 * cluster as one tar on stdout (`-X fetch`: the WAL it needs to be consistent
 * is inside, so the backup restores on its own too), gzipped by the sidecar.
 * Restored or checked by a recovery server to the backup's end.
 */
export const baseBackup: EngineBackup = {
  format: 'postgresql-base',
  dump: dumpBase,
  async restore(db: DatabaseConfig, content: Readable): Promise<void> {
    await withRecovered(content, [], 'immediate', (server) => bringInto(server, db));
  },
  async check(content: Readable, _workDir: string, db: DatabaseConfig | undefined): Promise<ScratchCheck> {
    if (db?.target.engine !== 'postgresql') throw new ScratchUnavailableError('a base backup is checked as the role of the database it came from, and that database is not configured');
    const target = db.target;
    return withRecovered(content, [], 'immediate', async (server) => {
      const tables = await countIn(server, target);
      return { tables, detail: `recovered to its end by a temporary server in ${server.dataDir}` };
    }).catch((error: unknown) => {
      if ((error as { code?: string }).code === 'ENOSPC') throw new ScratchUnavailableError((error as Error).message);
      throw error;
    });
  },
};

async function dumpBase(db: DatabaseConfig): Promise<Dump> {
  const target = pgTargetOf(db);
  await withClient(target, 10_000, async (client) => {
    const refusal = archiveRefusal(db.name, target.user, await readArchivePrivileges(client));
    if (refusal) throw new DrError(refusal.replace('cannot archive the WAL of', 'cannot take a base backup of'));
  }).catch((error: unknown) => {
    throw error instanceof DrError ? error : new DrError(`cannot start a base backup of ${db.name}: ${describePgError(error)}`);
  });
  const snapshotAt = new Date();
  const args = ['--pgdata=-', '--format=tar', '--wal-method=fetch', '--checkpoint=fast', '--no-password', '--verbose', '--label=dr-sidecar'];
  const env = { ...pgToolEnv(target), PGCONNECT_TIMEOUT: '10' };
  const child = spawn(pgServerBinary('pg_basebackup'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-16384)));
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error) => {
      stderr += `\n${error.message}`;
      resolve(-1);
    });
    child.once('close', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const finished = exited.then((code) => {
    if (code !== 0) throw new DrError(`pg_basebackup of ${db.name} failed: ${toolReason(stderr).replace(/^pg_basebackup:\s*/, '')}`);
    return null;
  });
  finished.catch(() => undefined);
  return {
    content: child.stdout,
    contentBytes: undefined,
    snapshotAt,
    sourceBytes: undefined,
    finished,
    wal: () => walSpanOf(stderr),
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `write-ahead log start point: 0/2000028 on timeline 1` … `end point: 0/2000100` from pg_basebackup --verbose. */
export function walSpanOf(stderr: string): { timeline: number; start_lsn: string; end_lsn: string } | undefined {
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/.exec(stderr);
  const end = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/.exec(stderr);
  if (!start || !end) return undefined;
  return { timeline: Number(start[2]), start_lsn: start[1]!, end_lsn: end[1]! };
}

/** Recovers a base backup (and WAL) in a scratch data directory, runs `fn` on the promoted server, removes it all. */
export async function withRecovered<T>(baseTar: Readable, wal: readonly WalSource[], target: RecoveryTarget, fn: (server: RecoveryServer, lastTransactionAt: Date | undefined) => Promise<T>): Promise<T> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-pitr-'));
  const server = new RecoveryServer(path.join(scratch, 'data'));
  try {
    await handOver(scratch); // the server's user must reach the data directory inside
    await server.prepare(baseTar, wal, target);
    const lastTransactionAt = await server.recover(RECOVERY_TIMEOUT_MS);
    return await fn(server, lastTransactionAt);
  } finally {
    await server.stop().catch(() => undefined);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Rows per table of the source's database in the recovered cluster, read as the sidecar's own role. */
export async function countIn(server: RecoveryServer, source: PgTarget): Promise<Record<string, number>> {
  const client = new pg.Client(server.connectionFor(source.database, source.user));
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    return await countRows(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Brings the database's contents as the recovered cluster holds them into the
 * configured database, the way `restore` does: pg_dump from the recovered
 * server, pg_restore --clean in one transaction on the configured one.
 */
export async function bringInto(server: RecoveryServer, db: DatabaseConfig): Promise<void> {
  const target = pgTargetOf(db);
  const local: PgTarget = { ...target, host: server.socketDir, port: server.connectionFor('x').port!, password: undefined, connectionString: 'postgresql://' };
  const run = startPgTool('pg_dump', ['--format=custom', '--compress=0', '--no-password', `--dbname=${target.database}`], local, { stdin: 'ignore', stdout: 'pipe' });
  const restoring = postgresBackup.restore(db, run.child.stdout!);
  const [code] = await Promise.all([run.exited, restoring.catch((error: unknown) => error)]).then(async ([c, restored]) => {
    if (restored instanceof Error) throw restored;
    return [c];
  });
  if (code !== 0) throw new DrError(`reading the recovered ${db.name} with pg_dump failed: ${toolReason(run.stderr())}`);
}
