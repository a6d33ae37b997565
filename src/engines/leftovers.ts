import fs from 'node:fs';
import path from 'node:path';
import { temporaryOwner } from '../backup/naming.js';
import { ownerGone } from '../backup/owner.js';

/**
 * Removes what a killed restore or copy left beside a SQLite database file:
 * its temporary files (`.<file>.tmp-<pid>-<ms>`, each as large as the
 * database) with their `-wal`, `-shm` and `-journal`. Only those of processes
 * that are gone: a restore or copy at work right now, in this process or
 * another, keeps its file (its pid is alive and older than the file).
 * Other files of the folder are never touched. Returns what it removed.
 */
export function removeLeftoversBeside(file: string): string[] {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return []; // no folder, nothing left behind in it
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const owner = temporaryOwner(name);
    if (!owner || !ownerGone(owner.pid, owner.createdMs)) continue;
    const leftover = path.join(dir, name);
    fs.rmSync(leftover, { force: true });
    removed.push(leftover);
  }
  return removed;
}
