import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseConfig } from '../config/load.js';
import { temporaryNameFor } from '../engines/durable-file.js';
import { ensurePrivateFolder } from '../engines/private-file.js';
import { DrError } from '../errors.js';
import { COMPRESSION_LEVEL, fsError, publishFile, writeBackupContent } from './backup-file.js';
import type { Catalogue } from './catalogue.js';
import type { Dump, DumpProgress } from './engine-backup.js';
import { engineBackupFor } from './engines.js';
import type { BackupTrigger, Manifest } from './manifest.js';
import { backupFileName, manifestPathOf, type BackupFormat } from './naming.js';

/** A catalogued backup: its manifest and where its file is. */
export type BackupRecord = Manifest & { path: string };

export interface TakeContext {
  catalogue: Catalogue;
  compress: boolean;
  /** Continuous archiving is on: a PostgreSQL backup is a base backup (`postgresql-base`), the start of point-in-time restores. */
  archived?: boolean;
  /** Aborted when the sidecar stops: the backup ends and leaves nothing behind. */
  signal: AbortSignal;
}

export interface TakeRequest {
  db: DatabaseConfig;
  name: string;
  trigger: BackupTrigger;
  /** performance.now() when the request began. */
  started: number;
  onProgress?: (progress: DumpProgress) => void;
}

/**
 * One backup, start to finish: a consistent snapshot streamed (gzipped) into a
 * temporary file and hashed on the way, fsynced; then its manifest, then the
 * file under its final name. A crash at any point leaves temporary files and
 * at most a manifest that names no file: nothing the catalogue calls good.
 */
export async function takeBackup(context: TakeContext, request: TakeRequest): Promise<BackupRecord> {
  const { db, onProgress } = request;
  const { signal } = context;
  const dir = context.catalogue.dirOf(db.name);
  try {
    ensurePrivateFolder(dir); // 0700: the folders hold whole databases
  } catch (error) {
    throw fsError(error, `creating the backup folder ${dir}`);
  }
  const progress = (p: DumpProgress) => {
    if (signal.aborted) throw new DrError('the sidecar is stopping');
    onProgress?.(p);
  };
  const engine = engineBackupFor(db.target.engine, context.archived);
  const dump = await engine.dump(db, dir, progress);
  try {
    const file = freeName(dir, request.name, dump.snapshotAt, engine.format, context.compress);
    const temporary = temporaryNameFor(file);
    try {
      const onBytes = (doneBytes: number) => progress({ phase: 'write', doneBytes, totalBytes: dump.contentBytes });
      const written = await writeBackupContent(dump.content, temporary, { compress: context.compress, onBytes, signal });
      const manifest = manifestOf(context, request, dump, engine.format, file, written);
      manifest.tables = await dump.finished;
      const wal = dump.wal?.();
      if (wal) manifest.wal = wal;
      manifest.finished_at = new Date().toISOString();
      manifest.duration_seconds = (performance.now() - request.started) / 1000;
      // Manifest first: until the file is published beside it, the catalogue calls it missing, never good.
      context.catalogue.writeManifest(file, manifest);
      try {
        publishFile(temporary, file);
      } catch (error) {
        fs.rmSync(manifestPathOf(file), { force: true });
        throw error;
      }
      return { ...manifest, path: file };
    } finally {
      fs.rmSync(temporary, { force: true });
    }
  } finally {
    await dump.close();
  }
}

function manifestOf(
  context: TakeContext,
  request: TakeRequest,
  dump: Dump,
  format: BackupFormat,
  file: string,
  written: { sha256: string; sizeBytes: number },
): Manifest {
  const { db } = request;
  return {
    version: 1,
    file: path.basename(file),
    database: db.name,
    engine: db.target.engine,
    format,
    compression: context.compress ? 'gzip' : 'none',
    compression_level: context.compress ? COMPRESSION_LEVEL : null,
    name: request.name,
    trigger: request.trigger,
    created_at: dump.snapshotAt.toISOString(),
    finished_at: '',
    duration_seconds: 0,
    size_bytes: written.sizeBytes,
    sha256: written.sha256,
    source: { url: db.displayUrl, size_bytes: dump.sourceBytes ?? null },
    tables: null,
  };
}

/** The backup's file name; a suffix tells apart two backups of one name in the same second. */
function freeName(dir: string, name: string, at: Date, format: BackupFormat, compress: boolean): string {
  for (let attempt = 1; ; attempt++) {
    const file = path.join(dir, backupFileName(name, at, format, compress, attempt));
    if (!fs.existsSync(file) && !fs.existsSync(manifestPathOf(file))) return file;
  }
}

