/**
 * The state file under the sidecar's feet. A process holding a SQLite file
 * open keeps reading and writing it after it is removed or replaced at its
 * path, while every process started later opens what is at the path: two
 * cluster states. The identity of the file (device and inode) tells them apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { createPrivateFile, ensurePrivateFolder } from '../engines/private-file.js';

export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

export type PathCheck = 'same' | 'missing' | 'replaced';

/** The identity of what is at `file` now; undefined when nothing is. */
export function identityAt(file: string): FileIdentity | undefined {
  const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  return stat ? { dev: stat.dev, ino: stat.ino } : undefined;
}

/** What became of the file opened as `opened`, given what is at its path now. */
export function comparePath(opened: FileIdentity, now: FileIdentity | undefined): PathCheck {
  if (!now) return 'missing';
  return now.dev === opened.dev && now.ino === opened.ino ? 'same' : 'replaced';
}

/**
 * Puts a copy of the open database `db` back at `file`: VACUUM INTO a temporary
 * name in the same folder, fsync, then whatever is at the path (a replacement,
 * or the -wal/-shm left by the removed file, which a new connection would
 * otherwise replay into the copy) is renamed to `<name>.replaced-<time>`, never
 * deleted, and the copy renamed over the path. Returns the names moved aside.
 */
export function writeBack(db: Database.Database, file: string, now = new Date()): string[] {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.write-back-${process.pid}`);
  // A folder removed with the file is made again: the state is what matters.
  ensurePrivateFolder(dir);
  fs.rmSync(temp, { force: true });
  try {
    createPrivateFile(temp); // VACUUM INTO takes an empty file, and keeps its 0600 mode
    db.prepare('VACUUM INTO ?').run(temp);
    fsyncPath(temp);
    const moved = moveAside(file, now.toISOString().replace(/[:.]/g, '-'));
    fs.renameSync(temp, file);
    fsyncPath(dir);
    return moved;
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
}

function moveAside(file: string, stamp: string): string[] {
  const moved: string[] = [];
  for (const side of ['', '-wal', '-shm']) {
    const from = file + side;
    if (!fs.lstatSync(from, { throwIfNoEntry: false })) continue;
    const to = `${file}.replaced-${stamp}${side}`;
    fs.renameSync(from, to);
    moved.push(to);
  }
  return moved;
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
