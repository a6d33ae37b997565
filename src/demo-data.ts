import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from './config/load.js';

/** The image crawler's table, as the reference application stores its records. */
export const IMAGES_SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  url         TEXT    NOT NULL UNIQUE,
  source_page TEXT,
  file_path   TEXT,
  file_size   INTEGER,
  width       INTEGER,
  height      INTEGER,
  format      TEXT,
  sha256      TEXT,
  status      TEXT    NOT NULL DEFAULT 'downloaded',
  created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
CREATE INDEX IF NOT EXISTS images_created_at ON images (created_at);`;

/**
 * Creates the SQLite files of the shipped example config that do not exist yet,
 * with the crawler's `images` table. Never touches an existing file: the sidecar
 * itself never creates a database, since an empty file standing in for a lost
 * primary would hide the loss.
 */
export function createDemoData(config: Config): string[] {
  const created: string[] = [];
  for (const db of config.databases) {
    if (!db.enabled || db.target.engine !== 'sqlite' || fs.existsSync(db.target.file)) continue;
    fs.mkdirSync(path.dirname(db.target.file), { recursive: true });
    const sqlite = new Database(db.target.file);
    try {
      sqlite.pragma('journal_mode = WAL');
      sqlite.exec(IMAGES_SCHEMA);
    } finally {
      sqlite.close();
    }
    created.push(db.target.file);
  }
  return created;
}
