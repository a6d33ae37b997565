import type { Cleanup } from './cleanup.js';
import type { Fleet } from './fleet.js';
import type { Report } from './table.js';

/** What every section gets. */
export interface BenchContext {
  /** The project's root (where bin/ and config/ are). */
  readonly root: string;
  /** A temp dir of this run, removed at the end; sections make subdirectories. */
  readonly tmp: string;
  readonly cleanup: Cleanup;
  /** The shared 55-database set (50 SQLite files, 5 PostgreSQL databases), made on first use. */
  fleet(): Promise<Fleet>;
}

/**
 * One part of the report (probe cycle, /metrics latency, idle RSS, ...).
 * A section adds rows as it measures, so a failure part-way keeps what it got.
 */
export interface Section {
  title: string;
  /** Wall-time budget; past it the run records an ERROR row and moves on. */
  budgetMs: number;
  run(ctx: BenchContext, report: Report): Promise<void>;
}
