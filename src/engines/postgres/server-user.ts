import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { DrError } from '../../errors.js';

/**
 * PostgreSQL refuses to run as root. A sidecar running as root starts its
 * temporary servers as the `postgres` user (Debian's), and hands it the
 * folders they use; any other user runs them as itself.
 */
export interface ServerUser {
  uid: number;
  gid: number;
}

let cached: ServerUser | undefined | null = null;

export function serverUser(): ServerUser | undefined {
  if (cached !== null) return cached;
  if (process.getuid?.() !== 0) return (cached = undefined);
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  if (uid.status !== 0) throw new DrError('the sidecar runs as root, PostgreSQL refuses to, and there is no "postgres" user to run a temporary server as: run the sidecar as another user, or create that user');
  return (cached = { uid: Number(uid.stdout.trim()), gid: Number(id('-g').stdout.trim()) });
}

/** Gives a folder (and everything in it) to the server's user, when that is not this process's. */
export async function handOver(dir: string): Promise<void> {
  const user = serverUser();
  if (!user) return;
  await new Promise<void>((resolve, reject) => {
    const child = spawn('chown', ['-R', `${user.uid}:${user.gid}`, dir], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new DrError(`chown -R of ${dir} failed (${code})`))));
  });
  fs.chownSync(dir, user.uid, user.gid);
}
