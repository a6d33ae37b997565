import type { Readable } from 'node:stream';
import type { DatabaseConfig } from '../config/load.js';
import { DrError } from '../errors.js';
import type { BackupFormat } from './naming.js';

/** Rows per table, by the table's name (PostgreSQL: `schema.table`). */
export type TableCounts = Record<string, number>;

export interface DumpProgress {
  /** `copy`: taking the consistent copy; `write`: compressing and writing the file. */
  phase: 'copy' | 'write';
  doneBytes: number;
  /** Undefined when the total is not known in advance (a pg_dump stream). */
  totalBytes: number | undefined;
}

/** A consistent snapshot of a database, as a stream of the backup's uncompressed content. */
export interface Dump {
  content: Readable;
  /** Bytes `content` will yield, when known in advance. */
  contentBytes: number | undefined;
  /** The moment the snapshot holds the data of. */
  snapshotAt: Date;
  /** Size of the database backed up. */
  sourceBytes: number | undefined;
  /** Settles once `content` has ended: rows per table in the snapshot (null: not counted), or why the dump failed. */
  finished: Promise<TableCounts | null>;
  /** A base backup's WAL span, known once `finished` settled. */
  wal?: () => { timeline: number; start_lsn: string; end_lsn: string } | undefined;
  /** Releases the snapshot (scratch copy, child process, connection); safe to call more than once. */
  close(): Promise<void>;
}

/** What a scratch restore found. */
export interface ScratchCheck {
  tables: TableCounts;
  /** One line on what was checked, e.g. "integrity_check ok". */
  detail: string;
}

/**
 * The scratch place of a check could not be prepared (server down, no
 * CREATEDB, disk full): the backup was not proven bad, only not proven good.
 */
export class ScratchUnavailableError extends DrError {}

/** How one engine backs up, restores and checks; adapters: sqlite-backup.ts, postgres-backup.ts. */
export interface EngineBackup {
  readonly format: BackupFormat;
  /** Takes a consistent snapshot; scratch files go to `workDir` (a folder of the backup's own file system). */
  dump(db: DatabaseConfig, workDir: string, onProgress: (progress: DumpProgress) => void): Promise<Dump>;
  /** Replaces the database's contents with `content`: all of it or, on any failure, nothing. */
  restore(db: DatabaseConfig, content: Readable): Promise<void>;
  /**
   * Restores `content` into a scratch place (a file in `workDir`; a scratch
   * database on `db`'s server), checks it, counts rows, removes the scratch.
   */
  check(content: Readable, workDir: string, db: DatabaseConfig | undefined): Promise<ScratchCheck>;
}
