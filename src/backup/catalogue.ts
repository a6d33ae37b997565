import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir, temporaryNameFor } from '../engines/durable-file.js';
import { writePrivateFile } from '../engines/private-file.js';
import { fsError, publishFile } from './backup-file.js';
import { manifestText, parseManifest, type Manifest } from './manifest.js';
import { databaseDir, MANIFEST_SUFFIX, manifestPathOf, temporaryOwner } from './naming.js';
import { ownerGone } from './owner.js';

export interface CatalogueEntry {
  database: string;
  /** Absolute path of the backup file. */
  path: string;
  manifestPath: string;
  manifest: Manifest | undefined;
  /** Why this backup is not good (missing, truncated, failed verification); undefined when it is. */
  problem: string | undefined;
}

/** A manifest without its file is a crash's leftover once it is older than this (publishing takes microseconds). */
const ORPHAN_MANIFEST_AGE_MS = 60_000;

/**
 * The backups under `backup_dir`, read from the manifests beside them. No
 * other store: what is on disk is the truth, whichever process wrote it.
 * Reads are synchronous: a folder holds `max_backups` small manifests, and
 * status and metrics read them while answering.
 */
export class Catalogue {
  private readonly cache = new Map<string, { mtimeMs: number; entries: CatalogueEntry[] }>();

  constructor(readonly root: string) {}

  dirOf(database: string): string {
    return databaseDir(this.root, database);
  }

  /** The databases that have a backup folder. */
  databases(): string[] {
    const entries = readDir(this.root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  }

  /** A database's backups, newest first; files without a manifest come last. */
  list(database: string): CatalogueEntry[] {
    const dir = this.dirOf(database);
    const names = readDir(dir);
    const manifests = names.filter((n) => n.endsWith(MANIFEST_SUFFIX) && !n.startsWith('.'));
    const entries = manifests.map((m) => this.entryAt(path.join(dir, m.slice(0, -MANIFEST_SUFFIX.length)), database));
    const described = new Set(manifests.map((m) => m.slice(0, -MANIFEST_SUFFIX.length)));
    const strays = names
      .filter((n) => !n.startsWith('.') && n !== 'archive' && !n.endsWith(MANIFEST_SUFFIX) && !described.has(n))
      .sort()
      .map((n) => strayEntry(database, path.join(dir, n)));
    return [...entries.sort(newestFirst), ...strays];
  }

  listAll(): CatalogueEntry[] {
    return this.databases().flatMap((d) => this.list(d));
  }

  /**
   * The database's list, re-read only when its folder changed (every publish,
   * prune and manifest update renames inside it): cheap enough for each scrape.
   */
  cachedList(database: string): CatalogueEntry[] {
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(this.dirOf(database)).mtimeMs;
    } catch {
      return [];
    }
    const cached = this.cache.get(database);
    if (cached?.mtimeMs === mtimeMs) return cached.entries;
    const entries = this.list(database);
    this.cache.set(database, { mtimeMs, entries });
    return entries;
  }

  newestGood(database: string): CatalogueEntry | undefined {
    return this.cachedList(database).find((e) => e.problem === undefined);
  }

  /** The entry of any backup file, from the manifest beside it. */
  entryAt(file: string, database?: string): CatalogueEntry {
    const manifestPath = manifestPathOf(file);
    const entry: CatalogueEntry = { database: database ?? path.basename(path.dirname(file)), path: file, manifestPath, manifest: undefined, problem: undefined };
    let text: string;
    try {
      text = fs.readFileSync(manifestPath, 'utf8');
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      return { ...entry, problem: missing ? `no manifest beside it (${path.basename(manifestPath)}): not a catalogued backup` : fsError(error, `reading ${manifestPath}`).message };
    }
    const manifest = parseManifest(text);
    if (typeof manifest === 'string') return { ...entry, problem: manifest };
    return { ...entry, database: database ?? manifest.database, manifest, problem: problemOf(file, manifest) };
  }

  /** Writes a new manifest; never replaces one. */
  writeManifest(file: string, manifest: Manifest): void {
    const temporary = temporaryNameFor(manifestPathOf(file));
    try {
      writePrivateFile(temporary, manifestText(manifest));
      publishFile(temporary, manifestPathOf(file));
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw fsError(error, `writing the manifest of ${file}`);
    }
  }

  /** Replaces a manifest (to record a verification), atomically. */
  updateManifest(entry: CatalogueEntry, manifest: Manifest): void {
    const temporary = temporaryNameFor(entry.manifestPath);
    try {
      writePrivateFile(temporary, manifestText(manifest));
      fs.renameSync(temporary, entry.manifestPath);
      fsyncDir(path.dirname(entry.manifestPath));
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw fsError(error, `updating ${entry.manifestPath}`);
    }
  }

  /** Removes the file first, then its manifest: a crash between leaves a manifest that names nothing, never a file that looks good. */
  remove(entry: CatalogueEntry): void {
    fs.rmSync(entry.path, { force: true });
    fs.rmSync(entry.manifestPath, { force: true });
    fsyncDir(path.dirname(entry.path));
  }

  /**
   * Removes what crashed backups left: temporary files of processes that are
   * gone, and manifests whose file never arrived. Returns what it removed.
   */
  cleanLeftovers(database: string, now = Date.now()): string[] {
    const dir = this.dirOf(database);
    const names = readDir(dir);
    const removed: string[] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      const owner = temporaryOwner(name);
      const leftover =
        owner !== undefined
          ? ownerGone(owner.pid, owner.createdMs)
          : name.endsWith(MANIFEST_SUFFIX) && !names.includes(name.slice(0, -MANIFEST_SUFFIX.length)) && olderThan(file, now - ORPHAN_MANIFEST_AGE_MS);
      if (!leftover) continue;
      fs.rmSync(file, { force: true });
      removed.push(file);
    }
    return removed;
  }
}

function problemOf(file: string, manifest: Manifest): string | undefined {
  if (manifest.file !== path.basename(file)) return `manifest describes "${manifest.file}", not this file`;
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'backup file is missing' : fsError(error, `reading ${file}`).message;
  }
  if (size !== manifest.size_bytes) return `file is ${size} bytes, its manifest says ${manifest.size_bytes} (truncated or changed)`;
  if (manifest.verification?.ok === false) return `failed verification at ${manifest.verification.at}: ${manifest.verification.detail}`;
  return undefined;
}

function strayEntry(database: string, file: string): CatalogueEntry {
  return { database, path: file, manifestPath: manifestPathOf(file), manifest: undefined, problem: 'no manifest beside it: not a catalogued backup' };
}

function newestFirst(a: CatalogueEntry, b: CatalogueEntry): number {
  const at = (e: CatalogueEntry) => (e.manifest ? Date.parse(e.manifest.created_at) : 0);
  return at(b) - at(a) || b.path.localeCompare(a.path);
}

function readDir(dir: string): string[];
function readDir(dir: string, options: { withFileTypes: true }): fs.Dirent[];
function readDir(dir: string, options?: { withFileTypes: true }): string[] | fs.Dirent[] {
  try {
    return options ? fs.readdirSync(dir, options) : fs.readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw fsError(error, `reading ${dir}`);
  }
}

function olderThan(file: string, cutoffMs: number): boolean {
  try {
    return fs.statSync(file).mtimeMs < cutoffMs;
  } catch {
    return false;
  }
}
