import type { Readable } from 'node:stream';

/**
 * Where backups, manifests and archived segments live: the local `backup_dir`
 * or an offsite destination (S3-compatible). Litestream's ReplicaClient is the
 * model: a handful of operations on keys, nothing that assumes a POSIX folder.
 *
 * Keys are relative, '/'-separated paths, the same on every destination:
 * `<database>/<backup file>`, `<database>/<backup file>.manifest.json`,
 * `<database>/archive/...`. A key never starts with '/' or contains '..'.
 */
export interface StoredObject {
  key: string;
  size: number;
  /** When the object was written (the destination's clock). */
  modified: Date;
}

export interface WrittenObject {
  key: string;
  size: number;
  /** Hex SHA-256 of the bytes as stored. */
  sha256: string;
}

export interface Storage {
  /** A name for logs, metrics and status, without any secret (`local`, `s3://bucket/prefix`). */
  readonly name: string;
  /** Every object whose key starts with `prefix` (all when empty), in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** The object's size and time, or undefined when there is none. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** The object's bytes as a stream; a StorageNotFound error when there is none. */
  read(key: string): Promise<Readable>;
  /**
   * Writes `body` under `key` durably: once this resolves the object is whole and
   * survives a crash; before, no reader sees a partial object under `key`.
   * Streams (no whole object in memory).
   */
  write(key: string, body: Readable): Promise<WrittenObject>;
  /** Removes the object; removing one that is not there is not an error. */
  delete(key: string): Promise<void>;
}

export class StorageNotFound extends Error {
  constructor(
    readonly storage: string,
    readonly key: string,
  ) {
    super(`${key} is not in ${storage}`);
    this.name = 'StorageNotFound';
  }
}

/** Refuses keys that could escape the destination's root. */
export function checkKey(key: string): string {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.' || part === '')) {
    throw new Error(`storage key ${JSON.stringify(key)} is not a relative path of plain names`);
  }
  return key;
}
