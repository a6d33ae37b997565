import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { IMAGES_SCHEMA } from '../../src/demo-data.js';

/** A temp folder removed by `cleanup()`. */
export function tempDir(prefix = 'dr-test-'): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A SQLite file with the crawler's `images` table and `rows` rows, in WAL mode unless told otherwise. */
export function makeImagesDb(file: string, rows = 0, journalMode: 'wal' | 'delete' = 'wal'): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma(`journal_mode = ${journalMode}`);
    db.exec(IMAGES_SCHEMA);
    insertImages(db, rows);
  } finally {
    db.close();
  }
}

export function insertImages(db: Database.Database, rows: number, offset = 0): void {
  const insert = db.prepare('INSERT INTO images (url, file_path, file_size, width, height, format, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = offset; i < offset + rows; i++) {
      insert.run(`https://example.com/img/${i}.jpg`, `images/${i}.jpg`, 1000 + i, 640, 480, 'jpeg', i.toString(16).padStart(64, '0'));
    }
  })();
}

export function countImages(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
