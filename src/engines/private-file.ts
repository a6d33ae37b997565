import fs from 'node:fs';
import path from 'node:path';

/**
 * What the sidecar writes holds whole databases (backups, safety backups,
 * copies in progress) or the cluster's state and its log: the owner's only.
 * Modes are set explicitly, with a chmod after creating, because the umask
 * (000 in some containers) must not decide who reads a backup. The
 * application's own database files and folders are never chmodded here.
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_FOLDER_MODE = 0o700;

/** Creates `file` (with `wx`, it must not exist yet) as 0600 whatever the umask; returns the open descriptor. */
export function openPrivateFile(file: string, flags: 'wx' | 'ax' = 'wx'): number {
  const fd = fs.openSync(file, flags, PRIVATE_FILE_MODE);
  try {
    fs.fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  return fd;
}

/** An empty 0600 file, for SQLite to write a database into: SQLite would create it 0644 less the umask. */
export function createPrivateFile(file: string): void {
  fs.closeSync(openPrivateFile(file));
}

/** A new 0600 file holding `text`. */
export function writePrivateFile(file: string, text: string): void {
  const fd = openPrivateFile(file);
  try {
    fs.writeFileSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * mkdir -p where every folder created is 0700 whatever the umask. Folders that
 * exist are left as they are: they may be the application's. One level at a
 * time, so a failure names its real reason (a recursive mkdir reports a
 * read-only file system as ENOENT).
 */
export function ensurePrivateFolder(dir: string): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !fs.existsSync(at); at = path.dirname(at)) {
    missing.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const folder of missing) {
    try {
      fs.mkdirSync(folder, { mode: PRIVATE_FOLDER_MODE });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue; // made by another process meanwhile: not ours
      throw error;
    }
    fs.chmodSync(folder, PRIVATE_FOLDER_MODE);
  }
  if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a folder`), { code: 'ENOTDIR' });
}

/**
 * 0600 for a SQLite database of the sidecar's own (the state store) and its
 * -wal/-shm/-journal where they exist. SQLite creates a new database 0644 less
 * the umask, and its side files with the database's mode: once the database is
 * 0600 the side files it creates later are too. A file of another user is left
 * as it is (EPERM): it is not ours to change.
 */
export function restrictSqliteFiles(file: string): void {
  for (const side of ['', '-wal', '-shm', '-journal']) {
    try {
      fs.chmodSync(`${file}${side}`, PRIVATE_FILE_MODE);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EPERM') throw error;
    }
  }
}

/** The permission bits of `file`, or undefined when it does not exist. */
export function modeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
}
