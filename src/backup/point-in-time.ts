/**
 * Point-in-time restore: the shapes both engines' archives answer in, so that
 * `restore --to-time`, `restore --list-times`, `verify` and `status` treat
 * PostgreSQL (base backup + WAL streamed by pg_receivewal) and SQLite (snapshot
 * + WAL frames kept as segments) alike.
 */
export interface TimeRange {
  from: Date;
  to: Date;
}

/** What one database's backups and archive let a user restore into. */
export interface RestoreWindow {
  database: string;
  engine: 'sqlite' | 'postgresql';
  /** Every moment inside these ranges can be restored; undefined ranges: archiving is off or nothing is archived yet. */
  ranges: TimeRange[];
  /** Holes inside the window (a missing segment, a slot that was dropped), with the reason. */
  gaps: (TimeRange & { reason: string })[];
}

export interface PointInTimeRequest {
  database: string;
  /** Restore the state as of this moment: every transaction committed at or before it, none after. */
  time: Date;
  /** PostgreSQL: leave a ready data directory here instead of replacing the configured database. */
  into?: string;
}

export interface PointInTimeOutcome {
  database: string;
  time: Date;
  /** The full backup the restore started from (its key in the storage it came from). */
  base: string;
  /** Where the base backup and the archive were read from (`local`, `s3://…`). */
  source: string;
  /** The commit time of the last transaction the result holds. */
  lastTransactionAt: Date | undefined;
  /** The data directory written (`--into`), or undefined when the configured database was replaced. */
  into: string | undefined;
  /** The safety backup taken before the configured database was replaced. */
  safetyBackup: string | undefined;
  durationSeconds: number;
}

export interface ArchiveVerification {
  database: string;
  ok: boolean;
  /** The moment a test restore went to and what it found, or why none was possible. */
  detail: string;
  gaps: (TimeRange & { reason: string })[];
}
