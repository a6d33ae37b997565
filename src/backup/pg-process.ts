import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { DatabaseTarget } from '../config/database-url.js';
import { pgBinary, pgToolEnv } from '../engines/pg-tools.js';
import { DrError } from '../errors.js';

export type PgTarget = Extract<DatabaseTarget, { engine: 'postgresql' }>;

/** A running pg_dump or psql, with the tail of what it said on stderr. */
export interface PgToolRun {
  child: ChildProcess;
  /** Exit code, or a signal name; never rejects. */
  exited: Promise<number | string>;
  /** The last lines the tool wrote to stderr. */
  stderr(): string;
}

const STDERR_TAIL_BYTES = 8 * 1024;

/** Starts a PostgreSQL client program; the connection (and password) goes through the environment only. */
export function startPgTool(
  name: 'pg_dump' | 'psql',
  args: string[],
  target: PgTarget,
  stdio: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore' },
): PgToolRun {
  const env = { ...pgToolEnv(target), PGCONNECT_TIMEOUT: '10', PGOPTIONS: '-c client_min_messages=warning' };
  const child = spawn(pgBinary(name), args, { env, stdio: [stdio.stdin, stdio.stdout, 'pipe'] });
  let tail = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    tail = (tail + text).slice(-STDERR_TAIL_BYTES);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error) => {
      tail += `\n${error.message}`;
      resolve(-1);
    });
    child.once('close', (code, signal) => resolve(code ?? signal ?? -1));
  });
  return { child, exited, stderr: () => tail };
}

/** The line of a tool's stderr that says what went wrong (the first ERROR/FATAL, else the last line). */
export function toolReason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = lines.find((l) => /\b(ERROR|FATAL|error):/.test(l));
  return (error ?? lines.at(-1) ?? 'no message').replace(/^(pg_dump|psql)(:[^:]*:\d+)?:\s*/, '');
}

/**
 * Replays a plain SQL dump with psql, in one transaction that only our own
 * COMMIT ends. psql's --single-transaction commits at end of input, so a
 * sidecar killed mid-restore (stdin closes) would commit half a restore; here
 * the end of input without COMMIT makes the server roll everything back.
 */
export async function replaySql(content: Readable, target: PgTarget, what: string): Promise<void> {
  const run = startPgTool('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], target, { stdin: 'pipe', stdout: 'ignore' });
  const stdin = run.child.stdin!;
  stdin.on('error', () => undefined); // EPIPE when psql stops at an error: its exit code says why.
  let ended = false;
  let endedEarly = false;
  void run.exited.then(() => (ended = true));
  const write = async (chunk: Buffer | string) => {
    if (!stdin.write(chunk)) await Promise.race([once(stdin, 'drain').catch(() => undefined), run.exited]);
  };
  try {
    await write('BEGIN;\n');
    for await (const chunk of content as AsyncIterable<Buffer>) {
      if (ended) break;
      await write(chunk);
    }
    endedEarly = ended;
    if (!endedEarly) await write('\nCOMMIT;\n');
    stdin.end();
  } catch (error) {
    // Killed before its input ends: it never sees the COMMIT.
    run.child.kill('SIGKILL');
    stdin.destroy();
    await run.exited;
    throw error;
  }
  const code = await run.exited;
  if (code !== 0 || endedEarly) throw new DrError(`${what} failed and was rolled back: ${toolReason(run.stderr())}`);
}
