import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseTarget } from '../config/database-url.js';
import { DrError } from '../errors.js';

type PgTarget = Extract<DatabaseTarget, { engine: 'postgresql' }>;

let binDir: string | null | undefined;

/**
 * The path of a PostgreSQL client program (pg_dump, pg_restore, psql). Looks in
 * $PG_BINDIR, the newest /usr/lib/postgresql/N/bin, then PATH; a missing one is
 * a clear error naming it.
 */
export function pgBinary(name: 'pg_dump' | 'pg_restore' | 'psql'): string {
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(path.join(process.env.PG_BINDIR, name));
  binDir ??= newestDebianBinDir();
  if (binDir) candidates.push(path.join(binDir, name));
  const found = candidates.find((c) => fs.existsSync(c));
  if (found) return found;
  const onPath = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  throw new DrError(`${name} is not installed: PostgreSQL backups and data copies need it (apt-get install -y postgresql-client, or set PG_BINDIR)`);
}

function newestDebianBinDir(): string | null {
  try {
    const versions = fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    return versions.length > 0 ? `/usr/lib/postgresql/${versions[0]}/bin` : null;
  } catch {
    return null;
  }
}

/**
 * Connection settings for a client program through the environment: the
 * password never appears on a command line, where `ps` would show it.
 */
export function pgToolEnv(target: PgTarget, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, PGHOST: target.host, PGPORT: String(target.port), PGUSER: target.user, PGDATABASE: target.database };
  delete env.PGPASSWORD;
  if (target.password !== undefined) env.PGPASSWORD = target.password;
  const sslmode = new URL(target.connectionString).searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  env.PGAPPNAME = 'dr-sidecar';
  return env;
}

/** A running PostgreSQL program (pg_dump, pg_restore, psql, pg_receivewal), with the tail of what it said on stderr. */
export interface PgToolRun {
  child: ChildProcess;
  /** Exit code, or a signal name; never rejects. */
  exited: Promise<number | string>;
  /** The last lines the program wrote to stderr. */
  stderr(): string;
}

const STDERR_TAIL_BYTES = 8 * 1024;

/** Spawns `binary`, keeping the last bytes of its stderr; its connection and password go through `env` only. */
export function spawnPgProgram(binary: string, args: string[], env: NodeJS.ProcessEnv, stdio: [StdioOptions, StdioOptions]): PgToolRun {
  const child = spawn(binary, args, { env, stdio: [stdio[0], stdio[1], 'pipe'] as StdioOptions });
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
