/**
 * A real S3-compatible server (s3rver, filesystem-backed) on a free loopback
 * port, with one bucket. `stop()` and `start()` again keep the same folder and
 * port, so a test can take the destination down and bring it back with its
 * objects. s3rver checks that the access key is one it knows (not the v4
 * signature): the harness registers its own key pair, long enough for the
 * secrets' safety net.
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './postgres.js';

const require = createRequire(import.meta.url);

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

function loadS3rver(): { S3rver: S3rverClass; registerKey: (id: string, secret: string) => void } {
  try {
    const S3rver = require('s3rver') as S3rverClass;
    const account = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
    return { S3rver, registerKey: (id, secret) => account.DUMMY_ACCOUNT.createKeyPair(id, secret) };
  } catch (error) {
    throw new Error(`this test needs the npm package \`s3rver\` (a dev dependency), which cannot be loaded: run npm ci (${(error as Error).message})`);
  }
}

export const S3_ACCESS_KEY_ID = 'AKIADRSIDECARTEST7Q2';
export const S3_SECRET_ACCESS_KEY = 'dr-sidecar/S3+secret-Xq93Lm20Vb71Tk55';

export interface S3Server {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps the bucket's objects. */
  readonly directory: string;
  /** The `backup.offsite` entry for this server (path-style, the harness's key pair). */
  offsite(prefix?: string): Record<string, unknown>;
  running(): boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

export async function startS3(options: { bucket?: string } = {}): Promise<S3Server> {
  const { S3rver, registerKey } = loadS3rver();
  registerKey(S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY);
  const bucket = options.bucket ?? 'dr-backups';
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-s3-'));
  const port = await freePort();
  let server: S3rverInstance | undefined;
  const start = async () => {
    if (server) return;
    const s = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: [{ name: bucket }] });
    await s.run();
    server = s;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = s.close();
    // A destination that goes down drops its connections, uploads under way included.
    s.httpServer?.closeAllConnections();
    await closed;
  };
  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    directory,
    offsite: (prefix = '') => ({
      type: 's3',
      endpoint: `http://127.0.0.1:${port}`,
      bucket,
      prefix,
      region: 'us-east-1',
      access_key_id: S3_ACCESS_KEY_ID,
      secret_access_key: S3_SECRET_ACCESS_KEY,
      force_path_style: true,
    }),
    running: () => server !== undefined,
    stop,
    start,
    close: async () => {
      await stop();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
