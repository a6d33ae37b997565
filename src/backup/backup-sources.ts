import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ensurePrivateFolder, openPrivateFile, PRIVATE_FOLDER_MODE } from '../engines/private-file.js';
import { ConflictError } from '../errors.js';
import type { Logger } from '../log.js';
import { DigestTap, type LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';
import { manifestText, parseManifest, type Manifest } from './manifest.js';
import { MANIFEST_SUFFIX } from './naming.js';
import { dataKeyOf, isManifestKey } from './offsite-plan.js';
import { ownerGone } from './owner.js';

/** A backup found in one of the places backups live. */
export interface SourcedBackup {
  /** `<database>/<file>`, the same key in every storage. */
  key: string;
  database: string;
  manifest: Manifest;
  /** Where it was found: the local folder first, then each destination in config order. */
  storage: Storage;
}

/** A backup brought into a private temporary folder for a restore or a verify; `release` removes it. */
export interface FetchedBackup {
  file: string;
  backup: SourcedBackup;
  release(): void;
}

/** Temporary folders of fetched backups: `backup_dir/.fetched-<pid>-<ms>/` (hidden: never catalogued nor mirrored). */
const FETCHED = /^\.fetched-(\d+)-(\d+)$/;

/**
 * Every place a backup may be: the local `backup_dir`, then each offsite
 * destination in config order. Restore, verify and point-in-time restore ask
 * here, so a backup whose local folder was lost is still found (and checked
 * against its manifest before it is used).
 */
export class BackupSources {
  constructor(
    readonly local: LocalStorage,
    readonly offsite: readonly Storage[],
    private readonly log?: Logger,
  ) {}

  get all(): Storage[] {
    return [this.local, ...this.offsite];
  }

  /**
   * The backups of one database (or all) across every source, each key once
   * (from the first source that has it whole), oldest first. A destination
   * that cannot be read is skipped with a warning.
   */
  async list(database?: string): Promise<SourcedBackup[]> {
    const found = new Map<string, SourcedBackup>();
    for (const storage of this.all) {
      let backups: SourcedBackup[];
      try {
        backups = await backupsIn(storage, database);
      } catch (error) {
        this.log?.warn({ destination: storage.name }, `backups on ${storage.name} could not be listed: ${(error as Error).message}`);
        continue;
      }
      for (const b of backups) if (!found.has(b.key)) found.set(b.key, b);
    }
    return [...found.values()].sort((a, b) => Date.parse(a.manifest.created_at) - Date.parse(b.manifest.created_at) || (a.key < b.key ? -1 : 1));
  }

  /** The first source (local first) holding `key` whole with its manifest; `skipLocal` looks offsite only. */
  async find(key: string, options: { skipLocal?: boolean } = {}): Promise<SourcedBackup | undefined> {
    for (const storage of options.skipLocal ? this.offsite : this.all) {
      try {
        const backup = await backupAt(storage, key);
        if (backup) return backup;
      } catch (error) {
        this.log?.warn({ destination: storage.name }, `looking for ${key} on ${storage.name} failed: ${(error as Error).message}`);
      }
    }
    return undefined;
  }

  /**
   * Downloads a backup and its manifest into a private temporary folder under
   * `backup_dir` (0700, files 0600), hashing on the way: a copy whose checksum
   * differs from its manifest is removed and refused.
   */
  async fetch(backup: SourcedBackup): Promise<FetchedBackup> {
    const dir = path.join(this.local.root, `.fetched-${process.pid}-${Date.now()}`);
    ensurePrivateFolder(path.join(dir, backup.database));
    fs.chmodSync(dir, PRIVATE_FOLDER_MODE);
    const release = () => fs.rmSync(dir, { recursive: true, force: true });
    const file = path.join(dir, ...backup.key.split('/'));
    try {
      const tap = new DigestTap();
      await pipeline(await backup.storage.read(backup.key), tap, fs.createWriteStream(file, { fd: openPrivateFile(file) }));
      const sha256 = tap.hash.digest('hex');
      if (sha256 !== backup.manifest.sha256 || tap.bytes !== backup.manifest.size_bytes) {
        throw new ConflictError(
          `${backup.key} from ${backup.storage.name} has sha256 ${sha256} (${tap.bytes} bytes), its manifest says ${backup.manifest.sha256} (${backup.manifest.size_bytes} bytes): not used`,
        );
      }
      const manifestFile = `${file}${MANIFEST_SUFFIX}`;
      fs.closeSync(openPrivateFile(manifestFile));
      fs.writeFileSync(manifestFile, manifestText(backup.manifest));
    } catch (error) {
      release();
      throw error;
    }
    this.log?.info({ destination: backup.storage.name, key: backup.key }, `backup ${backup.key} fetched from ${backup.storage.name}, sha256 matches its manifest`);
    return { file, backup, release };
  }

  /** Removes folders of fetched backups left by processes that are gone (a killed restore). */
  cleanLeftovers(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.local.root);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      const match = FETCHED.exec(name);
      if (!match || !ownerGone(Number(match[1]), Number(match[2]))) continue;
      fs.rmSync(path.join(this.local.root, name), { recursive: true, force: true });
      removed.push(path.join(this.local.root, name));
    }
    return removed;
  }
}

/** The whole backups in one storage: manifests directly under a database folder whose file is there with the manifest's size. */
async function backupsIn(storage: Storage, database?: string): Promise<SourcedBackup[]> {
  const objects = await storage.list(database === undefined ? '' : `${database}/`);
  const sizes = new Map(objects.map((o) => [o.key, o.size]));
  const found: SourcedBackup[] = [];
  for (const o of objects) {
    if (!isManifestKey(o.key) || o.key.split('/').length !== 2) continue;
    const manifest = await manifestAt(storage, o.key);
    const key = dataKeyOf(o.key);
    if (manifest && sizes.get(key) === manifest.size_bytes) found.push({ key, database: key.split('/')[0]!, manifest, storage });
  }
  return found;
}

async function backupAt(storage: Storage, key: string): Promise<SourcedBackup | undefined> {
  const stat = await storage.stat(key);
  if (!stat) return undefined;
  const manifest = await manifestAt(storage, `${key}${MANIFEST_SUFFIX}`);
  return manifest && manifest.size_bytes === stat.size ? { key, database: key.split('/')[0]!, manifest, storage } : undefined;
}

async function manifestAt(storage: Storage, key: string): Promise<Manifest | undefined> {
  if (!(await storage.stat(key))) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of (await storage.read(key)) as AsyncIterable<Buffer>) chunks.push(chunk);
  const parsed = parseManifest(Buffer.concat(chunks).toString('utf8'));
  return typeof parsed === 'string' ? undefined : parsed;
}
