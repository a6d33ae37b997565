import Database from 'better-sqlite3';
import type { Logger } from '../log.js';
import type { SqliteIdentityRecord, StateStore } from '../state/store.js';
import { pagesOf, readSqliteFile } from './sqlite-file.js';
import { judgeIdentity, worthPersisting, type SqliteIdentity, type SqliteObservation } from './sqlite-identity.js';

/** How long a copy or restore of the sidecar's own may take before its file is judged again. */
const REPLACING_TTL_MS = 10 * 60_000;

export type IdentityStore = Pick<StateStore, 'sqliteIdentities' | 'recordSqliteIdentity'>;

/** User tables in the schema: the question a probe of the file answers anyway. */
export const USER_TABLES_SQL = "SELECT name FROM sqlite_schema WHERE type = 'table' AND rootpage > 0 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";

/**
 * The file at `file` now: device, inode, birth, pages and change counter from the
 * file system, and its user tables through a short read-only connection (undefined
 * when it cannot be opened). Throws when the file cannot be read at all.
 */
export function observeSqliteFile(file: string): SqliteObservation & { problem?: string } {
  const at = Date.now();
  const state = readSqliteFile(file);
  const header = state.header;
  const observation = { at, dev: state.dev, ino: state.ino, born: state.birthtimeMs, pages: pagesOf(state), changeCounter: header && !('problem' in header) ? header.changeCounter : 0, tables: undefined as number | undefined };
  if (header && 'problem' in header) return { ...observation, problem: header.problem };
  if (state.size === 0) return { ...observation, tables: 0 };
  try {
    // No busy wait: this runs on the event loop; a file locked right now is judged without its tables.
    const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
    try {
      observation.tables = db.prepare(USER_TABLES_SQL).all().length;
    } finally {
      db.close();
    }
  } catch {
    // Not readable through SQLite right now: judged on what the file system says.
  }
  return observation;
}

/**
 * The identities of the SQLite databases this process watches, kept in the
 * shared state store. Each probe's observation is judged against the baseline;
 * a baseline moves forward with every good observation and is set anew only
 * by the sidecar's own replacements (copies, restores) and by an operator
 * (`accept-file`), which any process can record and every other one picks up.
 */
export class SqliteIdentities {
  private readonly known = new Map<string, SqliteIdentityRecord>();
  /** As last written to or read from the store (known ones move forward in memory between writes). */
  private readonly persisted = new Map<string, SqliteIdentityRecord>();
  private readonly lost = new Map<string, string>();
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly store: IdentityStore,
    private readonly log: Logger,
  ) {}

  /**
   * Why `database` lost its data (the file at its path is not the one watched), or undefined.
   * `up`: the observation comes from a probe that read the file, so a first sight may become the baseline.
   */
  async judge(database: string, file: string, observed: SqliteObservation, up: boolean): Promise<string | undefined> {
    // A first load that failed (the store unreachable at start) is tried again by the next probe, not kept as a failure forever.
    await (this.loaded ??= this.reload().catch((error: unknown) => {
      this.loaded = undefined;
      throw error;
    }));
    let record = this.usable(database, file);
    let why = record ? this.verdict(record, observed) : undefined;
    // Another process (a CLI restore, a switchover's copy, accept-file) may have re-baselined the file.
    if (!record || why !== undefined) {
      await this.reload();
      record = this.usable(database, file);
      why = record ? this.verdict(record, observed) : undefined;
    }
    if (!record) {
      if (up) await this.remember({ database, file, identity: strip(observed), since: observed.at, generation: Date.now(), source: 'first-seen' });
      return undefined;
    }
    this.report(database, file, why);
    if (why === undefined && up && !isReplacing(record) && observed.at >= record.since) await this.advance(record, observed);
    return why;
  }

  /**
   * The verdict without touching the store, when memory suffices: the baseline is loaded,
   * the file is the same database, and moving the baseline forward needs no write. Probes
   * take this path almost always (one promise per probe, as the monitor wants); undefined: ask `judge`.
   */
  settled(database: string, file: string, observed: SqliteObservation, up: boolean): { why: undefined } | undefined {
    if (!this.loaded || !up || this.lost.has(database)) return undefined;
    const record = this.usable(database, file);
    if (!record || isReplacing(record) || observed.at < record.since || this.verdict(record, observed) !== undefined) return undefined;
    const next = this.forward(record, observed);
    const persisted = this.persisted.get(database);
    if (!persisted || persisted.generation !== record.generation || worthPersisting(persisted.identity, next.identity)) return undefined;
    this.known.set(database, next);
    return { why: undefined };
  }

  /** Judges the file as it is right now (the copy path, right before it overwrites a secondary). */
  async check(database: string, file: string): Promise<string | undefined> {
    let observed: SqliteObservation & { problem?: string };
    try {
      observed = observeSqliteFile(file);
    } catch (error) {
      return `it cannot be read (${(error as Error).message})`;
    }
    if (observed.problem) return `it is not a database: ${observed.problem}`;
    return this.judge(database, file, observed, false);
  }

  /** The sidecar is about to replace the file itself: nothing is judged until `rebaseline` (or `cancelReplace`, or 10 minutes). */
  async beginReplace(database: string, file: string): Promise<void> {
    await (this.loaded ??= this.reload());
    const current = this.usable(database, file);
    if (!current) return;
    await this.write({ ...current, generation: Date.now(), replacingUntil: Date.now() + REPLACING_TTL_MS });
  }

  /** The replacement did not happen: judge the file against its old baseline again. */
  async cancelReplace(database: string, file: string): Promise<void> {
    const current = this.usable(database, file);
    if (current?.replacingUntil !== undefined) await this.write({ ...current, generation: Date.now(), replacingUntil: undefined });
  }

  /** The sidecar replaced the file: what is there now is the database. `source` says who. */
  async rebaseline(database: string, file: string, source: 'copy' | 'restore' | 'accepted'): Promise<SqliteIdentityRecord | undefined> {
    let observed: (SqliteObservation & { problem?: string }) | undefined;
    try {
      observed = observeSqliteFile(file);
    } catch {
      observed = undefined;
    }
    if (!observed || observed.problem !== undefined) {
      // Nothing readable there: keep judging against the old baseline.
      await this.cancelReplace(database, file);
      return undefined;
    }
    const record: SqliteIdentityRecord = { database, file, identity: strip(observed), since: observed.at, generation: Date.now(), source };
    await this.write(record);
    this.lost.delete(database);
    return record;
  }

  /** The recorded baseline of `database` (for `accept-file` to show what it replaces). */
  async recorded(database: string, file: string): Promise<SqliteIdentityRecord | undefined> {
    await this.reload();
    return this.usable(database, file);
  }

  private usable(database: string, file: string): SqliteIdentityRecord | undefined {
    const record = this.known.get(database);
    return record && record.file === file ? record : undefined;
  }

  private verdict(record: SqliteIdentityRecord, observed: SqliteObservation): string | undefined {
    // Replaced by the sidecar itself right now, or seen before the baseline was taken: nothing to judge.
    if (isReplacing(record) || observed.at < record.since) return undefined;
    return judgeIdentity(record.identity, observed);
  }

  private forward(record: SqliteIdentityRecord, observed: SqliteObservation): SqliteIdentityRecord {
    return { ...record, identity: { ...strip(observed), tables: observed.tables ?? record.identity.tables }, since: observed.at, source: 'observed' };
  }

  private async advance(record: SqliteIdentityRecord, observed: SqliteObservation): Promise<void> {
    const next = this.forward(record, observed);
    const persisted = this.persisted.get(record.database);
    if (!persisted || persisted.generation !== record.generation || worthPersisting(persisted.identity, next.identity)) await this.remember(next);
    else this.known.set(record.database, next);
  }

  /**
   * What a probe learnt, written down if the store takes it. A store that cannot (one that
   * refuses writes because it does not exist yet, one unreachable for a moment) must not turn
   * a probe into a failure: the identity is kept here and written with a later probe.
   */
  private async remember(record: SqliteIdentityRecord): Promise<void> {
    try {
      await this.write(record);
    } catch {
      this.known.set(record.database, record);
    }
  }

  private async write(record: SqliteIdentityRecord): Promise<void> {
    const clean = { ...record };
    if (clean.replacingUntil === undefined) delete clean.replacingUntil;
    await this.store.recordSqliteIdentity(clean);
    this.known.set(record.database, clean);
    this.persisted.set(record.database, clean);
  }

  /** Adopts every record of a newer generation than the one held (a re-baseline by any process). */
  private async reload(): Promise<void> {
    for (const record of await this.store.sqliteIdentities()) {
      const held = this.known.get(record.database);
      if (!held || record.generation > held.generation || (record.generation === held.generation && record.file !== held.file)) {
        this.known.set(record.database, record);
        this.persisted.set(record.database, record);
      }
    }
  }

  /** Logs a database becoming lost, and being accepted again, once each. */
  private report(database: string, file: string, why: string | undefined): void {
    const before = this.lost.get(database);
    if (why !== undefined && before === undefined) {
      this.log.error(
        { database, file, reason: why },
        `disaster-recovery identity: ${database} LOST its data: ${why}; it is never copied over a secondary. ` +
          `If the file was replaced on purpose: disaster-recovery accept-file ${database}`,
      );
    } else if (why === undefined && before !== undefined) {
      this.log.warn({ database, file }, `disaster-recovery identity: ${database}'s file is accepted again (${file})`);
    }
    if (why === undefined) this.lost.delete(database);
    else this.lost.set(database, why);
  }
}

function strip(observed: SqliteObservation): SqliteIdentity {
  return { dev: observed.dev, ino: observed.ino, born: observed.born ?? 0, pages: observed.pages, changeCounter: observed.changeCounter, tables: observed.tables };
}

const isReplacing = (record: SqliteIdentityRecord) => (record.replacingUntil ?? 0) > Date.now();
