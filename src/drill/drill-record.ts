/**
 * What a drill did and measured, as it goes into the history (a FailoverRecord
 * with trigger `drill` and this report) and out of `drill --json` and the API.
 */
import type { TableCounts } from '../backup/engine-backup.js';
import { InputError } from '../errors.js';

export const DRILL_KINDS = ['switchover', 'restore'] as const;
export type DrillKind = (typeof DRILL_KINDS)[number];
export const DRILL_RESULTS = ['success', 'failed', 'skipped'] as const;
export type DrillResult = (typeof DRILL_RESULTS)[number];

/** The switchover drill: there to the best secondary and back, under the probe writer. */
export interface SwitchoverFigures {
  /** The primary the drill started on (and must end on). */
  original: string;
  /** The secondary it switched to; null when the first switch did not happen. */
  target: string | null;
  /** The primary the cluster is on when the drill ended. */
  endedOn: string | null;
  /** Seconds the probe writer could not commit, during the switch there and the switch back (null: not measured). */
  outageThereSeconds: number | null;
  outageBackSeconds: number | null;
  /** Probe transactions committed through withSession during the drill, and attempts that failed. */
  probeCommits: number;
  probeFailures: number;
  /** Rows per table on the original primary before the drill, and on the primary after it. */
  rowsBefore: TableCounts | null;
  rowsAfter: TableCounts | null;
  /** Tables with fewer rows after than before (a loss, unless the application deleted rows meanwhile). */
  rowsShort: Record<string, number>;
  /** History ids of the drill's switchovers (trigger drill). */
  switchIds: number[];
}

/** The restore drill: the newest good backup restored into a scratch place and checked. */
export interface RestoreFigures {
  database: string;
  /** The backup file restored; null when there was none. */
  backup: string | null;
  backupCreatedAt: string | null;
  tables: TableCounts | null;
  rowsChecked: number;
  /** A random moment of the archive window restored too, when point-in-time restore is available. */
  pointInTime: { checked: boolean; time: string | null; detail: string };
}

export interface DrillReport {
  kind: DrillKind;
  result: DrillResult;
  /** What was proven, or why the drill was skipped or failed. */
  detail: string;
  /** What started it: an operator (CLI, API) or the schedule. */
  requestedBy: 'manual' | 'scheduled';
  durationSeconds: number;
  switchover?: SwitchoverFigures;
  restore?: RestoreFigures;
}

/** The report as `--json` and the API show it: snake_case, as every other answer of the sidecar. */
export function drillReportJson(r: DrillReport): Record<string, unknown> {
  const s = r.switchover;
  const x = r.restore;
  return {
    kind: r.kind,
    result: r.result,
    detail: r.detail,
    requested_by: r.requestedBy,
    duration_seconds: r.durationSeconds,
    ...(s
      ? {
          switchover: {
            original: s.original,
            target: s.target,
            ended_on: s.endedOn,
            outage_there_seconds: s.outageThereSeconds,
            outage_back_seconds: s.outageBackSeconds,
            probe_commits: s.probeCommits,
            probe_failures: s.probeFailures,
            rows_checked: sumRows(s.rowsBefore),
            rows_before: s.rowsBefore,
            rows_after: s.rowsAfter,
            rows_short: s.rowsShort,
            switch_ids: s.switchIds,
          },
        }
      : {}),
    ...(x
      ? {
          restore: {
            database: x.database,
            backup: x.backup,
            backup_created_at: x.backupCreatedAt,
            tables: x.tables,
            rows_checked: x.rowsChecked,
            point_in_time: x.pointInTime,
          },
        }
      : {}),
  };
}

export function sumRows(counts: TableCounts | null): number {
  return counts ? Object.values(counts).reduce((sum, n) => sum + n, 0) : 0;
}

/** Tables that hold fewer rows after than before, with how many fewer. */
export function rowsShort(before: TableCounts, after: TableCounts): Record<string, number> {
  const short: Record<string, number> = {};
  for (const [table, n] of Object.entries(before)) {
    const now = after[table] ?? 0;
    if (now < n) short[table] = n - now;
  }
  return short;
}

/** One line per drill, for the CLI and the logs. */
export function drillSummary(r: DrillReport): string {
  const s = r.switchover;
  const x = r.restore;
  const secs = (v: number | null) => (v === null ? '-' : `${v.toFixed(3)} s`);
  if (s) return `switchover drill ${r.result}: ${s.original} -> ${s.target ?? '-'} -> ${s.endedOn ?? '-'}; write outage ${secs(s.outageThereSeconds)} there, ${secs(s.outageBackSeconds)} back; ${sumRows(s.rowsBefore)} row(s) checked: ${r.detail}`;
  if (x) return `restore drill ${r.result}: ${x.database}${x.backup ? ` from ${x.backup}` : ''}; ${x.rowsChecked} row(s) checked: ${r.detail}`;
  return `${r.kind} drill ${r.result}: ${r.detail}`;
}

/** The drills a command asks for: both, or one of them (the two flags together are a mistake). */
export function drillKindsOf(flags: { switchoverOnly?: boolean | undefined; restoreOnly?: boolean | undefined }): DrillKind[] {
  if (flags.switchoverOnly && flags.restoreOnly) throw new InputError('--switchover-only and --restore-only exclude each other: give one, or neither for both drills');
  if (flags.switchoverOnly) return ['switchover'];
  if (flags.restoreOnly) return ['restore'];
  return [...DRILL_KINDS];
}

/** The `kinds` of an API request: absent for both, else a list of known kinds. */
export function parseDrillKinds(value: unknown, shownAs: string): DrillKind[] {
  if (value === undefined) return [...DRILL_KINDS];
  if (!Array.isArray(value) || value.length === 0 || !value.every((k) => (DRILL_KINDS as readonly unknown[]).includes(k))) {
    throw new InputError(`${shownAs}: expected a non-empty list of ${DRILL_KINDS.map((k) => `"${k}"`).join(', ')}`);
  }
  return [...new Set(value as DrillKind[])];
}
