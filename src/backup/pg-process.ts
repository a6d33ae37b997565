import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { DatabaseTarget } from '../config/database-url.js';
import { pgBinary, pgToolEnv, spawnPgProgram, type PgToolRun } from '../engines/pg-tools.js';
import { DrError } from '../errors.js';
import { fsError } from './backup-file.js';

export type PgTarget = Extract<DatabaseTarget, { engine: 'postgresql' }>;

export type { PgToolRun };

/** Starts a PostgreSQL client program; the connection (and password) goes through the environment only. */
export function startPgTool(
  name: 'pg_dump' | 'pg_restore' | 'psql',
  args: string[],
  target: PgTarget,
  stdio: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore' },
): PgToolRun {
  const env = { ...pgToolEnv(target), PGCONNECT_TIMEOUT: '10', PGOPTIONS: '-c client_min_messages=warning' };
  return spawnPgProgram(pgBinary(name), args, env, [stdio.stdin, stdio.stdout]);
}

/** The line of a tool's stderr that says what went wrong (the first ERROR/FATAL, else the last line). */
export function toolReason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = lines.find((l) => /\b(ERROR|FATAL|error):/.test(l));
  return (error ?? lines.at(-1) ?? 'no message').replace(/^(pg_dump|pg_restore)(:[^:]*:\d+)?:\s*/, '').replace(/^psql:<stdin>:(\d+):\s*/, 'line $1: ');
}

/** A libpq conninfo naming only the database: any name, even one holding "=", stays a name. */
export function dbnameConninfo(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Feeds a custom-format archive to `pg_restore --single-transaction` on
 * stdin. A stream that fails part-way kills pg_restore before its input
 * ends; and an archive cut short (this process killed) is one pg_restore
 * refuses, so the transaction never commits half a restore.
 */
export async function restoreArchive(content: Readable, target: PgTarget, options: string[], what: string): Promise<void> {
  const args = ['--single-transaction', '--exit-on-error', '--no-password', ...options, `--dbname=${dbnameConninfo(target.database)}`];
  const run = startPgTool('pg_restore', args, target, { stdin: 'pipe', stdout: 'ignore' });
  const stdin = run.child.stdin!;
  stdin.on('error', () => undefined); // EPIPE when pg_restore stops at an error: its exit code says why.
  content.once('error', () => run.child.kill('SIGKILL'));
  const fed = pipeline(content, stdin).catch((error: unknown) => error);
  const [code, fedError] = await Promise.all([run.exited, fed]);
  const pipeClosed = (fedError as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
  if (fedError && !pipeClosed) throw new DrError(`${what} was stopped and rolled back: ${fsError(fedError, 'reading the backup').message}`);
  if (code !== 0) throw new DrError(`${what} failed and was rolled back: ${toolReason(run.stderr())}`);
}
