import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DrError } from '../../errors.js';

export type ServerProgram = 'pg_receivewal' | 'pg_basebackup' | 'pg_waldump' | 'pg_ctl' | 'postgres' | 'pg_dump' | 'psql';

/**
 * The PostgreSQL programs continuous archiving and point-in-time restore run:
 * $PG_BINDIR, /usr/lib/postgresql/15/bin (the version of the servers this
 * sidecar is tested with), the newest /usr/lib/postgresql/N/bin, then PATH.
 */
export function pgServerBinary(name: ServerProgram): string {
  const dirs: string[] = [];
  if (process.env.PG_BINDIR) dirs.push(process.env.PG_BINDIR);
  dirs.push('/usr/lib/postgresql/15/bin', ...debianBinDirs());
  const found = dirs.map((d) => path.join(d, name)).find((c) => fs.existsSync(c));
  if (found) return found;
  const onPath = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  throw new DrError(`${name} is not installed: continuous archiving and point-in-time restore of PostgreSQL need it (apt-get install -y postgresql, or set PG_BINDIR)`);
}

function debianBinDirs(): string[] {
  try {
    return fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => `/usr/lib/postgresql/${v}/bin`);
  } catch {
    return [];
  }
}
