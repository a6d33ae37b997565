/**
 * The restore drill: the newest good backup of a database restored into a
 * scratch place (verify's real restore: a temporary SQLite file, a scratch
 * PostgreSQL database), integrity-checked and compared with the row counts its
 * manifest recorded at backup time. Then, where point-in-time restore is
 * available, a random moment of the archive window restored the same way.
 */
import type { RestoreWindow } from '../backup/point-in-time.js';
import type { VerifyResult } from '../backup/verify.js';
import { sumRows, type RestoreFigures } from './drill-record.js';

/** The seam for point-in-time restore (backup/point-in-time.ts): absent until that is built. */
export interface PointInTimeDrill {
  window(database: string): Promise<RestoreWindow>;
  /** Restores `time` into a scratch place and checks it; says what it found. */
  check(database: string, time: Date): Promise<{ ok: boolean; detail: string }>;
}

export interface RestoreDrillDeps {
  newestGood(database: string): { path: string; created_at: string } | undefined;
  verify(file: string): Promise<VerifyResult[]>;
  pointInTime?: PointInTimeDrill | undefined;
  /** Uniform in [0, 1): the moment chosen in the window. */
  random?: () => number;
}

export interface RestoreDrillOutcome {
  ok: boolean;
  detail: string;
  figures: RestoreFigures;
}

export async function runRestoreDrill(deps: RestoreDrillDeps, database: string): Promise<RestoreDrillOutcome> {
  const figures: RestoreFigures = {
    database,
    backup: null,
    backupCreatedAt: null,
    tables: null,
    rowsChecked: 0,
    pointInTime: { checked: false, time: null, detail: 'not tried' },
  };
  const newest = deps.newestGood(database);
  if (!newest) return { ok: false, detail: `no good backup of ${database} to restore: take one (disaster-recovery backup --database ${database})`, figures };
  figures.backup = newest.path;
  figures.backupCreatedAt = newest.created_at;
  const [result] = await deps.verify(newest.path);
  if (!result) return { ok: false, detail: `the backup ${newest.path} was not verified`, figures };
  figures.tables = result.tables;
  figures.rowsChecked = sumRows(result.tables);
  figures.pointInTime = await pointInTimeCheck(deps, database);
  if (!result.ok) return { ok: false, detail: `the backup ${newest.path} did not restore as recorded: ${result.detail}`, figures };
  const pitr = figures.pointInTime;
  if (pitr.checked && !pitr.detail.startsWith('ok')) return { ok: false, detail: `the backup restored (${result.detail}), but the archive did not: ${pitr.detail}`, figures };
  return { ok: true, detail: `restored into a scratch place: ${result.detail}`, figures };
}

async function pointInTimeCheck(deps: RestoreDrillDeps, database: string): Promise<RestoreFigures['pointInTime']> {
  if (!deps.pointInTime) {
    return { checked: false, time: null, detail: 'archiving is off (backup.archive.enabled), or point-in-time restore is not available for this database: only the newest backup was restored' };
  }
  const window = await deps.pointInTime.window(database);
  const time = randomMomentIn(window, deps.random ?? Math.random);
  if (!time) return { checked: false, time: null, detail: 'no archive window to restore from (archiving off, or nothing archived yet)' };
  const found = await deps.pointInTime.check(database, time);
  return { checked: true, time: time.toISOString(), detail: found.ok ? `ok: ${found.detail}` : found.detail };
}

/** A moment drawn uniformly over the window's ranges (their total length), or undefined for an empty window. */
export function randomMomentIn(window: Pick<RestoreWindow, 'ranges'>, random: () => number): Date | undefined {
  const spans = window.ranges.map((r) => ({ from: r.from.getTime(), ms: Math.max(0, r.to.getTime() - r.from.getTime()) }));
  const total = spans.reduce((sum, s) => sum + s.ms, 0);
  if (spans.length === 0) return undefined;
  let offset = random() * total;
  for (const span of spans) {
    if (offset <= span.ms) return new Date(span.from + Math.floor(offset));
    offset -= span.ms;
  }
  const last = spans[spans.length - 1]!;
  return new Date(last.from + last.ms);
}
