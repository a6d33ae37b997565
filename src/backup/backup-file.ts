import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline as streamPipeline, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { fsyncDir, fsyncFile } from '../engines/durable-file.js';
import { openPrivateFile } from '../engines/private-file.js';
import { ConflictError, DrError } from '../errors.js';

/** gzip's own default: the level `gzip` and `pg_dump | gzip` use, so sizes and speeds compare. */
export const COMPRESSION_LEVEL = 6;
/** Read and compress in chunks this big: memory stays flat whatever the database's size. */
export const CHUNK_BYTES = 1 << 20;

export interface WrittenContent {
  sha256: string;
  sizeBytes: number;
}

export interface WriteOptions {
  compress: boolean;
  /** Called with the uncompressed bytes written so far. */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

/** Counts what flows through, and hashes it when asked. */
class Tap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly hashing: boolean,
    private readonly onBytes?: (bytes: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.hashing) this.hash.update(chunk);
    try {
      this.onBytes?.(this.bytes);
    } catch (error) {
      done(error as Error); // a progress listener may stop the backup (the sidecar is stopping)
      return;
    }
    done(null, chunk);
  }
}

/**
 * Streams `content` (through gzip when asked) into `temporary`, a new file,
 * hashing what is stored; fsyncs it. The stream's backpressure bounds memory.
 */
export async function writeBackupContent(content: Readable, temporary: string, options: WriteOptions): Promise<WrittenContent> {
  const progress = new Tap(false, options.onBytes);
  const stored = new Tap(true);
  const stages: NodeJS.ReadWriteStream[] = [progress];
  if (options.compress) stages.push(zlib.createGzip({ level: COMPRESSION_LEVEL, chunkSize: 64 * 1024 }));
  stages.push(stored);
  try {
    const out = fs.createWriteStream(temporary, { fd: openPrivateFile(temporary) });
    await pipeline([content, ...stages, out], { signal: options.signal });
    fsyncFile(temporary);
  } catch (error) {
    throw fsError(error, `writing ${temporary}`);
  }
  return { sha256: stored.hash.digest('hex'), sizeBytes: stored.bytes };
}

/**
 * Makes a finished temporary file visible under its final name without ever
 * replacing another file: a hard link fails when the name is taken, where a
 * rename would silently overwrite a backup written in the same second.
 */
export function publishFile(temporary: string, final: string): void {
  fsyncFile(temporary);
  try {
    fs.linkSync(temporary, final);
    fs.unlinkSync(temporary);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ConflictError(`${final} already exists; not overwriting it`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw fsError(error, `publishing ${final}`);
    // File systems without hard links: rename, after checking the name is free.
    if (fs.existsSync(final)) throw new ConflictError(`${final} already exists; not overwriting it`);
    fs.renameSync(temporary, final);
  }
  fsyncDir(path.dirname(final));
}

/** sha256 and size of a file as stored, read in large chunks. */
export async function fileDigest(file: string | fs.promises.FileHandle): Promise<WrittenContent> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of rawStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    sizeBytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}

/** The uncompressed content of a backup file. */
export function readBackupContent(file: string | fs.promises.FileHandle, compressed: boolean): Readable {
  const raw = rawStream(file);
  if (!compressed) return raw;
  // pipeline() destroys the file stream when the reader stops early or the gzip data is bad.
  return streamPipeline(raw, zlib.createGunzip({ chunkSize: 64 * 1024 }), () => undefined);
}

/** A file read from its start; an open handle stays open (its owner closes it). */
function rawStream(file: string | fs.promises.FileHandle): Readable {
  return typeof file === 'string'
    ? fs.createReadStream(file, { highWaterMark: CHUNK_BYTES })
    : file.createReadStream({ highWaterMark: CHUNK_BYTES, start: 0, autoClose: false });
}

const FS_REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a folder',
  ENOENT: 'no such file or folder',
  EIO: 'input/output error',
  EFBIG: 'file too large',
};

/** A failure of the file system (full, read-only, permissions), as opposed to bad data. */
export class FileSystemError extends DrError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A file-system error in words a user can act on, naming what was being done. */
export function fsError(error: unknown, doing: string): Error {
  if (error instanceof DrError) return error;
  const e = error as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return new DrError(`stopped while ${doing}`);
  const reason = e?.code ? FS_REASONS[e.code] : undefined;
  if (reason) return new FileSystemError(`${reason} while ${doing} (${e.code})`, e.code!);
  if (e?.code === 'Z_DATA_ERROR' || e?.code === 'Z_BUF_ERROR') return new DrError(`not a valid gzip stream while ${doing}: ${e.message}`);
  return new DrError(`${e?.message ?? String(error)} while ${doing}`);
}
