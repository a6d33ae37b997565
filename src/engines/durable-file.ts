import fs from 'node:fs';
import path from 'node:path';

/** A temporary name beside `file`, in the same folder so the rename is atomic. */
export function temporaryNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
}

export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a folder so a rename inside it survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Makes a finished temporary file the real one: fsync, rename over, fsync the folder. */
export function commitFile(temporary: string, file: string): void {
  fsyncFile(temporary);
  fs.renameSync(temporary, file);
  fsyncDir(path.dirname(file));
}
