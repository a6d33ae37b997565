import type { PgTarget } from '../pg-client.js';
import { pgToolEnv, spawnPgProgram, type PgToolRun } from '../pg-tools.js';
import { pgServerBinary } from './server-binaries.js';

export type ReceiveWal = PgToolRun;

/**
 * Streams the primary's WAL into `dir` through `slot`: `--synchronous` so
 * each commit is flushed to the spool as it arrives, gzip for the finished
 * segments (a switched, mostly empty segment shrinks to a few KiB). The
 * connection and password go through the environment, never the command line.
 */
export function startReceiveWal(target: PgTarget, dir: string, slot: string): ReceiveWal {
  const args = ['--directory', dir, '--slot', slot, '--synchronous', '--compress=gzip:1', '--no-loop', '--no-password', '--status-interval=1', '--verbose'];
  const env = { ...pgToolEnv(target), PGCONNECT_TIMEOUT: '10' };
  return spawnPgProgram(pgServerBinary('pg_receivewal'), args, env, ['ignore', 'ignore']);
}

/** The line of pg_receivewal's stderr that says why it stopped. */
export function receiveWalReason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = [...lines].reverse().find((l) => /error:|FATAL|fatal:/.test(l));
  return (error ?? lines.at(-1) ?? 'no message').replace(/^pg_receivewal:\s*/, '');
}

/** The server no longer has the WAL the spool continues from (a slot invalidated, or a new primary's fresh slot). */
export function walWasRemoved(stderr: string): boolean {
  return /has already been removed|can no longer get changes|invalidated|is not reserved|does not exist/i.test(stderr);
}
