import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline, type Readable } from 'node:stream';
import { compareKeys, DigestTap } from './local-storage.js';
import { normalizePrefix, s3StorageName } from './s3-name.js';
import { checkKey, StorageNotFound, type Storage, type StoredObject, type WrittenObject } from './storage.js';

export interface S3StorageOptions {
  /** `https://s3.example.com`; undefined: AWS's own endpoint for the region. */
  endpoint: string | undefined;
  bucket: string;
  /** Every key is stored under it (`prod/` → `prod/<db>/<file>`); may be empty. */
  prefix: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, s3rver, most S3-compatible services). */
  forcePathStyle: boolean;
}

/** Multipart parts of 8 MiB, two in flight: at most ~16 MiB of a backup in memory, whatever its size. */
const PART_BYTES = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/**
 * An S3-compatible bucket as a Storage (`@aws-sdk/client-s3`, multipart
 * uploads through `@aws-sdk/lib-storage`'s Upload, which reads the body as a
 * stream, part by part). S3 makes an object visible only when its PUT or its
 * multipart upload completes, so a failed write leaves nothing under the key
 * (the multipart upload is aborted). Credentials stay inside the client: the
 * name, logs and errors show the bucket and prefix only.
 */
export class S3Storage implements Storage {
  readonly name: string;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly options: S3StorageOptions) {
    this.prefix = normalizePrefix(options.prefix);
    this.name = s3StorageName(options.bucket, options.prefix);
    // The SDK warns on stderr of every command that Node 20 gets no releases after January 2027: we pin 3.x
    // on Node 20 on purpose (README), and a command's stderr is for its errors. An explicit setting wins.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      // A destination that is down must fail a pass quickly; the copier retries with its own backoff.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
      // Only the checksums S3 requires: S3-compatible services differ in the newer optional ones.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`listing ${prefix || '(everything)'}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.prefix + prefix, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(this.prefix)) continue;
        found.push({ key: object.Key.slice(this.prefix.length), size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) }));
      return { key, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(error, `reading the size of ${key}`);
    }
  }

  async read(key: string): Promise<Readable> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) }));
      return object.Body as Readable;
    } catch (error) {
      if (isNotFound(error)) throw new StorageNotFound(this.name, key);
      throw this.failure(error, `reading ${key}`);
    }
  }

  async write(key: string, body: Readable): Promise<WrittenObject> {
    const tap = new DigestTap();
    // pipeline() carries an error of the body into the tap, which the upload reads: the upload fails and is aborted.
    pipeline(body, tap, () => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: this.objectKey(key), Body: tap },
      partSize: PART_BYTES,
      queueSize: PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    await this.call(`writing ${key}`, () => upload.done());
    return { key, size: tap.bytes, sha256: tap.hash.digest('hex') };
  }

  async delete(key: string): Promise<void> {
    await this.call(`deleting ${key}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) })));
  }

  /** Closes the client's sockets. */
  close(): void {
    this.client.destroy();
  }

  private objectKey(key: string): string {
    return this.prefix + checkKey(key);
  }

  private async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.failure(error, doing);
    }
  }

  /** What failed, where, and why in the service's words; never a credential (removed from foreign text too). */
  private failure(error: unknown, doing: string): Error {
    const e = error as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
    const status = e?.$metadata?.httpStatusCode;
    const code = e instanceof S3ServiceException ? e.name : (e?.code ?? e?.name);
    const where = this.options.endpoint ? ` at ${this.options.endpoint}` : '';
    const why = [code, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
    let message = `${this.name}${where}: ${doing} failed: ${e?.message || why || String(error)}${why && e?.message ? ` (${why})` : ''}`;
    for (const secret of [this.options.secretAccessKey, this.options.accessKeyId]) {
      if (secret.length >= 4) message = message.split(secret).join('***');
    }
    return new S3StorageError(message, this.name);
  }
}

export class S3StorageError extends Error {
  constructor(
    message: string,
    readonly storage: string,
  ) {
    super(message);
    this.name = 'S3StorageError';
  }
}


function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket') return false; // the destination is wrong, not the object missing
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
