import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { checkKey, StorageNotFound, type Storage, type StoredObject, type WrittenObject } from '../storage/storage.js';

/**
 * The local `backup_dir` as a read-only Storage, for point-in-time restores:
 * what they read goes through the Storage interface, so an offsite
 * destination can stand in for the folder (the seam the offsite storage
 * fills). Hidden names (temporary files, the archiver's spool) are not listed.
 */
export class LocalArchiveSource implements Storage {
  readonly name = 'local';

  constructor(private readonly root: string) {}

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    const walk = (dir: string, key: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.name.startsWith('.') || e.name.endsWith('.partial')) continue;
        const childKey = key ? `${key}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (prefix.startsWith(`${childKey}/`) || childKey.startsWith(prefix)) walk(path.join(dir, e.name), childKey);
        } else if (e.isFile() && childKey.startsWith(prefix)) {
          const st = fs.statSync(path.join(dir, e.name));
          found.push({ key: childKey, size: st.size, modified: st.mtime });
        }
      }
    };
    walk(this.root, '');
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const st = fs.statSync(path.join(this.root, checkKey(key)));
      return { key, size: st.size, modified: st.mtime };
    } catch {
      return undefined;
    }
  }

  async read(key: string): Promise<Readable> {
    const file = path.join(this.root, checkKey(key));
    if (!fs.existsSync(file)) throw new StorageNotFound(this.name, key);
    return fs.createReadStream(file);
  }

  write(): Promise<WrittenObject> {
    return Promise.reject(new Error('the archive source is read-only'));
  }

  delete(): Promise<void> {
    return Promise.reject(new Error('the archive source is read-only'));
  }
}
