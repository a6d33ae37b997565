import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import type { LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';
import { parseManifest, type Manifest } from './manifest.js';
import { indexPathOf, readIndex, writeIndex, type OffsiteIndexData } from './offsite-index.js';
import { databaseOfKey, isManifestKey, pendingFiles, remoteBackups, vanished, type LocalFile, type RemoteObject } from './offsite-plan.js';
import { planRetention, type RetentionPolicy } from './retention.js';

export interface OffsiteDeps {
  local: LocalStorage;
  /** In config order. */
  destinations: Storage[];
  retention: RetentionPolicy;
  log: Logger;
  /** Removes secrets from foreign text (an error message) before it is logged or remembered. */
  scrub: (text: string) => string;
  /** Seconds between passes when nothing asks for one (a new backup wakes the copier at once). */
  intervalMs?: number;
  /** Backoff after a failed pass: doubles from `initialMs` up to `maxMs`. */
  retry?: { initialMs: number; maxMs: number };
}

const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_RETRY = { initialMs: 1_000, maxMs: 30_000 };

interface Digest {
  sha256: string;
  size: number;
}

/**
 * Copies everything final under `backup_dir` (backups, manifests, archived
 * segments) to each offsite destination, oldest first, and counts a file
 * offsite only once it was read back from there and its SHA-256 matched (a
 * backup's manifest's, else the local file's). Each destination has its own
 * loop: one that is down is retried with backoff and catches up when it
 * returns, and never holds up a local backup or another destination. Runs on
 * the leader only (started and stopped with the leadership). Retention is
 * applied to each destination's own backups with the same policy as the local
 * folder: what is deleted there follows from what is there, never from the
 * local folder being empty.
 */
export class OffsiteCopier {
  private running = false;
  /** Each start is a new generation: loops of a stopped one end even if the copier was started again meanwhile. */
  private generation = 0;
  private loops: Promise<void>[] = [];
  private readonly wakers = new Map<string, () => void>();
  private readonly woken = new Set<string>();
  /** The local file being streamed to each destination, destroyed on stop. */
  private readonly inFlight = new Map<string, Readable>();
  private readonly failureListeners = new Set<(destination: string) => void>();
  private readonly passListeners = new Set<(destination: string) => void>();

  constructor(readonly deps: OffsiteDeps) {}

  get destinations(): Storage[] {
    return this.deps.destinations;
  }

  indexFileOf(destination: Storage): string {
    return indexPathOf(this.deps.local.root, destination.name);
  }

  index(destination: Storage): OffsiteIndexData {
    return readIndex(this.indexFileOf(destination), destination.name);
  }

  onFailure(listener: (destination: string) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** Called after every pass, good or bad (status and metrics read the index afresh). */
  onPass(listener: (destination: string) => void): () => void {
    this.passListeners.add(listener);
    return () => this.passListeners.delete(listener);
  }

  start(): void {
    if (this.running || this.destinations.length === 0) return;
    this.running = true;
    const generation = ++this.generation;
    this.loops = this.destinations.map((d) => this.loop(d, generation));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.generation += 1;
    for (const stream of this.inFlight.values()) stream.destroy(new Error('the sidecar is stopping'));
    for (const wake of this.wakers.values()) wake();
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** Something new is in `backup_dir` (a backup, a manifest rewritten): every destination looks now. */
  wake(): void {
    for (const d of this.destinations) {
      this.woken.add(d.name);
      this.wakers.get(d.name)?.();
    }
  }

  private async loop(destination: Storage, generation: number): Promise<void> {
    const retry = this.deps.retry ?? DEFAULT_RETRY;
    let failures = 0;
    const current = () => this.running && this.generation === generation;
    while (current()) {
      this.woken.delete(destination.name);
      let waitMs = this.deps.intervalMs ?? DEFAULT_INTERVAL_MS;
      try {
        await this.sync(destination);
        failures = 0;
      } catch {
        failures += 1;
        waitMs = Math.min(retry.initialMs * 2 ** (failures - 1), retry.maxMs);
      }
      if (!current()) break;
      if (this.woken.has(destination.name)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.wakers.set(destination.name, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.wakers.delete(destination.name);
    }
  }

  /** One pass to one destination; records (and rethrows) a failure. */
  async sync(destination: Storage): Promise<void> {
    const indexFile = this.indexFileOf(destination);
    const index = readIndex(indexFile, destination.name);
    try {
      await this.pass(destination, index, indexFile);
      index.last_success_at = new Date().toISOString();
      index.last_error = null;
      writeIndex(indexFile, index);
    } catch (error) {
      const message = this.deps.scrub((error as Error).message ?? String(error));
      index.last_error = { message, at: new Date().toISOString() };
      try {
        writeIndex(indexFile, index);
      } catch (writeError) {
        this.deps.log.error({ destination: destination.name }, this.deps.scrub(`offsite index of ${destination.name} not written: ${(writeError as Error).message}`));
      }
      this.deps.log.warn({ destination: destination.name }, `offsite copy to ${destination.name} failed (the local backups are unaffected; retrying): ${message}`);
      for (const listener of this.failureListeners) listener(destination.name);
      throw error;
    } finally {
      for (const listener of this.passListeners) listener(destination.name);
    }
  }

  private async pass(destination: Storage, index: OffsiteIndexData, indexFile: string): Promise<void> {
    const remote = new Map((await destination.list('')).map((o) => [o.key, o as RemoteObject]));
    for (const key of vanished(index.objects, remote)) {
      delete index.objects[key];
      this.deps.log.warn({ destination: destination.name, key }, `offsite: ${key} is no longer on ${destination.name} as it was copied; it counts as offsite no more and is copied again`);
    }
    const local = (await this.deps.local.list('')).map((o): LocalFile => ({ key: o.key, size: o.size, mtimeMs: o.modified.getTime() }));
    for (const file of pendingFiles(local, index.objects)) {
      if (!this.running && this.loops.length > 0) return;
      const digest = await this.copyVerified(destination, file, remote.get(file.key));
      if (!digest) continue; // gone locally meanwhile (pruned)
      const at = new Date().toISOString();
      index.objects[file.key] = { size: file.size, mtime_ms: file.mtimeMs, sha256: digest.sha256, at };
      index.last_arrived = { key: file.key, at };
      remote.set(file.key, { key: file.key, size: digest.size });
      // After each file: what arrived stays known if the sidecar stops half-way through a catch-up.
      writeIndex(indexFile, index);
    }
    await this.prune(destination, remote, index);
  }

  /**
   * Makes `file` be on the destination with its expected checksum: already
   * there (checked by reading it back, e.g. after the index was lost), or
   * uploaded and then read back. Undefined when the local file is gone.
   */
  private async copyVerified(destination: Storage, file: LocalFile, there: RemoteObject | undefined): Promise<Digest | undefined> {
    const expected = await this.expectedDigest(file);
    if (!expected) return undefined;
    if (there?.size === expected.size && (await digestOf(await destination.read(file.key))).sha256 === expected.sha256) return expected;
    let body: Readable;
    try {
      body = await this.deps.local.read(file.key);
    } catch {
      return undefined; // pruned since the listing
    }
    this.inFlight.set(destination.name, body);
    try {
      const sent = await destination.write(file.key, body);
      if (sent.sha256 !== expected.sha256) throw new Error(`${file.key} changed while it was copied to ${destination.name} (or does not match its manifest); copying it again`);
    } finally {
      this.inFlight.delete(destination.name);
    }
    const back = await digestOf(await destination.read(file.key));
    if (back.sha256 !== expected.sha256 || back.size !== expected.size) {
      throw new Error(`${file.key} read back from ${destination.name} has sha256 ${back.sha256} (${back.size} bytes), expected ${expected.sha256} (${expected.size} bytes)`);
    }
    this.deps.log.info({ destination: destination.name, key: file.key, size_bytes: back.size }, `offsite: ${file.key} copied to ${destination.name} and verified (sha256 ${back.sha256})`);
    return back;
  }

  /** A backup file's is its manifest's (the checksum taken when it was written); any other file's is the local file's. */
  private async expectedDigest(file: LocalFile): Promise<Digest | undefined> {
    if (!isManifestKey(file.key)) {
      const manifest = await this.localManifest(`${file.key}.manifest.json`);
      if (manifest) return { sha256: manifest.sha256, size: manifest.size_bytes };
    }
    try {
      return await digestOf(await this.deps.local.read(file.key));
    } catch {
      return undefined;
    }
  }

  private async localManifest(key: string): Promise<Manifest | undefined> {
    try {
      const parsed = parseManifest(await textOf(await this.deps.local.read(key)));
      return typeof parsed === 'string' ? undefined : parsed;
    } catch {
      return undefined;
    }
  }

  /** `max_backups` and `retention_days` applied to the destination's own backups, database by database. */
  private async prune(destination: Storage, remote: Map<string, RemoteObject>, index: OffsiteIndexData): Promise<void> {
    const now = new Date();
    const databases = new Set([...remote.keys()].map(databaseOfKey));
    for (const database of databases) {
      const backups = remoteBackups(remote, database);
      if (backups.length <= 1) continue;
      const described = [];
      for (const b of backups) {
        const size = remote.get(b.manifestKey)!.size;
        let created = index.created[b.manifestKey];
        if (created?.size !== size) {
          const manifest = parseManifest(await textOf(await destination.read(b.manifestKey)));
          if (typeof manifest === 'string') continue; // not ours to judge: kept
          created = { size, created_at: manifest.created_at, good: manifest.verification?.ok !== false && manifest.size_bytes === remote.get(b.dataKey)?.size };
          index.created[b.manifestKey] = created;
        }
        described.push({ id: b.manifestKey, dataKey: b.dataKey, createdAt: new Date(created.created_at), good: created.good && b.present });
      }
      const plan = planRetention(described, this.deps.retention, now);
      for (const removed of plan.remove) {
        const { dataKey } = described.find((d) => d.id === removed.id)!;
        // The file first, then its manifest: a manifest without its file is never taken for a good backup.
        await destination.delete(dataKey);
        await destination.delete(removed.id);
        for (const key of [dataKey, removed.id]) {
          remote.delete(key);
          delete index.objects[key];
        }
        delete index.created[removed.id];
      }
      if (plan.remove.length > 0) {
        this.deps.log.info(
          { destination: destination.name, database, removed: plan.remove.map((r) => r.id) },
          `offsite retention removed ${plan.remove.length} backup(s) of ${database} from ${destination.name}, kept ${plan.keep.length}`,
        );
      }
    }
  }
}

export async function digestOf(stream: Readable): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function textOf(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
