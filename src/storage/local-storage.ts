import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, fsyncFile, temporaryNameFor } from '../engines/durable-file.js';
import { ensurePrivateFolder, openPrivateFile } from '../engines/private-file.js';
import { checkKey, StorageNotFound, type Storage, type StoredObject, type WrittenObject } from './storage.js';

/** Read in chunks this big: memory stays flat whatever an object's size. */
const CHUNK_BYTES = 1 << 20;

/**
 * A name that is not final: a temporary file (dot-prefixed, anywhere in the
 * path) or a `.partial` one. Such files are never listed, so they are never
 * mirrored offsite nor taken for a backup.
 */
export function isFinalKey(key: string): boolean {
  return !key.endsWith('.partial') && !key.split('/').some((part) => part.startsWith('.'));
}

/** Counts and hashes what flows through. */
export class DigestTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/**
 * The local `backup_dir` as a Storage. Writes go to a dot-prefixed temporary
 * name beside the final one, are fsynced, renamed over, and the folder is
 * fsynced: a crash leaves either the old object or the new one whole, and the
 * temporary name is one `list` never shows. Files and folders are the owner's
 * only (0600/0700), whatever the umask: they hold whole databases.
 */
export class LocalStorage implements Storage {
  readonly name = 'local';

  constructor(readonly root: string) {}

  fileOf(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    await this.walk(this.root, '', prefix, found);
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  /**
   * The same listing, synchronously: for status and metrics, which answer
   * without awaiting (a folder of backups and segments, read in milliseconds).
   */
  listSync(prefix = ''): StoredObject[] {
    const found: StoredObject[] = [];
    const walk = (dir: string, relative: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // missing or unreadable: nothing to list
      }
      for (const entry of entries) {
        const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
        if (!isFinalKey(key) || (!key.startsWith(prefix) && !prefix.startsWith(`${key}/`))) continue;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full, key);
        else if (entry.isFile() && key.startsWith(prefix)) {
          try {
            const stat = fs.statSync(full);
            found.push({ key, size: stat.size, modified: stat.mtime });
          } catch {
            // removed meanwhile
          }
        }
      }
    };
    walk(this.root, '');
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const stat = await fs.promises.stat(this.fileOf(key));
      return stat.isFile() ? { key, size: stat.size, modified: stat.mtime } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.failure(error, `reading the size of ${key}`);
    }
  }

  async read(key: string): Promise<Readable> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(this.fileOf(key), 'r');
    } catch (error) {
      if (isMissing(error)) throw new StorageNotFound(this.name, key);
      throw this.failure(error, `opening ${key}`);
    }
    return handle.createReadStream({ highWaterMark: CHUNK_BYTES });
  }

  async write(key: string, body: Readable): Promise<WrittenObject> {
    const file = this.fileOf(key);
    const temporary = temporaryNameFor(file);
    const tap = new DigestTap();
    try {
      ensurePrivateFolder(path.dirname(file));
      const out = fs.createWriteStream(temporary, { fd: openPrivateFile(temporary) });
      await pipeline(body, tap, out);
      fsyncFile(temporary);
      await fs.promises.rename(temporary, file);
      fsyncDir(path.dirname(file));
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw this.failure(error, `writing ${key}`);
    }
    return { key, size: tap.bytes, sha256: tap.hash.digest('hex') };
  }

  async delete(key: string): Promise<void> {
    const file = this.fileOf(key);
    try {
      await fs.promises.rm(file);
    } catch (error) {
      if (isMissing(error)) return;
      throw this.failure(error, `deleting ${key}`);
    }
    fsyncDir(path.dirname(file));
  }

  private async walk(dir: string, relative: string, prefix: string, found: StoredObject[]): Promise<void> {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw this.failure(error, `listing ${dir}`);
    }
    for (const entry of entries) {
      const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (!isFinalKey(key)) continue;
      // Skip whole folders that cannot hold a key with this prefix.
      if (!key.startsWith(prefix) && !prefix.startsWith(`${key}/`)) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await this.walk(full, key, prefix, found);
      else if (entry.isFile() && key.startsWith(prefix)) {
        const stat = await fs.promises.stat(full).catch(() => undefined); // removed meanwhile: not there
        if (stat) found.push({ key, size: stat.size, modified: stat.mtime });
      }
    }
  }

  private failure(error: unknown, doing: string): Error {
    const e = error as NodeJS.ErrnoException;
    return new Error(`${this.name} storage (${this.root}): ${doing} failed: ${e?.message ?? String(error)}`);
  }
}

/** Key order: by UTF-16 code units, the same on every destination (S3 lists are re-sorted so). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}
