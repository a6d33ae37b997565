import { InputError } from '../errors.js';
import { drillReportJson } from '../drill/drill-record.js';
import type { DataSyncOutcome, FailoverRecord } from '../state/store.js';

/** The most history entries one request returns (the CLI's `--limit`, the API's `?limit=`). */
export const MAX_HISTORY_LIMIT = 10_000;

/**
 * A history limit as typed by a user: digits only, 1 to MAX_HISTORY_LIMIT.
 * `Number()` alone would take "1e20", " 5 " or "0x10", and a limit past
 * SQLite's integers is a "datatype mismatch" deep in the store.
 */
export function parseHistoryLimit(raw: unknown, shownAs: string): number {
  const text = String(raw);
  const limit = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(limit >= 1 && limit <= MAX_HISTORY_LIMIT)) {
    throw new InputError(`${shownAs}: expected a whole number from 1 to ${MAX_HISTORY_LIMIT}, got "${text}"`);
  }
  return limit;
}

/** A history entry as `--json` and the HTTP API show it: snake_case keys, as every other answer of the sidecar. */
export interface FailoverRecordJson {
  id: number | null;
  epoch: number | null;
  started_at: string;
  finished_at: string;
  from: string | null;
  to: string | null;
  trigger: FailoverRecord['trigger'];
  reason: string;
  result: FailoverRecord['result'];
  error: string | null;
  data_sync: { method: DataSyncOutcome['method']; complete: boolean; detail: string; lag_seconds: number | null } | null;
  /** Milliseconds of each phase: detect, choose, sync, switch. */
  phases: FailoverRecord['phases'];
  /** What became of the replaced primary (successful switches): demoted or still a candidate, and what to do. */
  former_primary?: { name: string; demoted: boolean; note: string };
  /** A drill's entry (trigger drill): its kind, result and figures (see drill/drill-record.ts). */
  drill?: Record<string, unknown>;
}

export function failoverRecordJson(r: FailoverRecord): FailoverRecordJson {
  return {
    id: r.id ?? null,
    epoch: r.epoch,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    from: r.from,
    to: r.to,
    trigger: r.trigger,
    reason: r.reason,
    result: r.result,
    error: r.error,
    data_sync: r.dataSync
      ? { method: r.dataSync.method, complete: r.dataSync.complete, detail: r.dataSync.detail, lag_seconds: r.dataSync.lagSeconds ?? null }
      : null,
    phases: r.phases,
    ...(r.formerPrimary ? { former_primary: { name: r.formerPrimary.name, demoted: r.formerPrimary.demoted, note: r.formerPrimary.note } } : {}),
    ...(r.drill ? { drill: drillReportJson(r.drill) } : {}),
  };
}
