import fs from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/load.js';
import { InputError } from '../../errors.js';
import type { PointInTimeOutcome, RestoreWindow } from '../../backup/point-in-time.js';
import { optionsOf, printJson, withService } from '../context.js';
import { formatSeconds, printable } from '../format.js';
import { backupLogger } from './backup.js';

export interface PointInTimeFlags {
  toTime?: string;
  into?: string;
  listTimes?: boolean;
  database?: string;
  yes?: boolean;
  skipSafetyBackup?: boolean;
}

/** `restore --to-time` and `restore --list-times`: parsing and printing; each engine's archive answers. */
export async function runPointInTime(file: string | undefined, flags: PointInTimeFlags, command: Command, config: Config): Promise<void> {
  if (file !== undefined) throw new InputError('restore takes a backup file, or --to-time / --list-times, not both');
  const json = optionsOf(command).json === true;
  if (flags.listTimes) {
    const windows = await withService(config, backupLogger(config), (service) => service.restoreWindows(flags.database));
    if (json) printJson(windows);
    else process.stdout.write(windows.map(renderWindow).join(''));
    return;
  }
  const time = parseTime(flags.toTime!);
  if (flags.into === undefined && !flags.yes) {
    throw new InputError('restore --to-time replaces the database (after a safety backup); pass --yes to confirm, or --into DIR to leave a data directory instead');
  }
  const outcome = await withService(config, backupLogger(config), (service) =>
    service.restoreToTime({ database: flags.database ?? '', time, ...(flags.into !== undefined ? { into: flags.into } : {}) }, { skipSafetyBackup: flags.skipSafetyBackup }),
  );
  if (json) printJson(outcomeJson(outcome));
  else process.stdout.write(renderOutcome(outcome));
}

export function parseTime(text: string): Date {
  // A time without a zone would be read in the machine's zone: too easy to get wrong by hours.
  if (!/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/i.test(text.trim())) {
    throw new InputError(`--to-time ${JSON.stringify(text)} is not an ISO 8601 time with a zone (e.g. 2026-11-30T14:03:07Z or 2026-11-30T22:03:07+08:00)`);
  }
  const time = new Date(text.trim().replace(' ', 'T'));
  if (Number.isNaN(time.getTime())) throw new InputError(`--to-time ${JSON.stringify(text)} is not a valid time`);
  return time;
}

/** A window as computed (Dates) or as the status carries it (ISO texts). */
type WindowLike = Pick<RestoreWindow, 'database' | 'engine'> & {
  ranges: Array<{ from: Date | string; to: Date | string }>;
  gaps: Array<{ from: Date | string; to: Date | string; reason: string }>;
};
const isoOf = (t: Date | string) => (typeof t === 'string' ? t : t.toISOString());

export function renderWindow(w: WindowLike): string {
  const lines = [`${printable(w.database)} (${w.engine}):`];
  if (w.ranges.length === 0) lines.push('  no point-in-time window (archiving off, or no base backup and archived commit yet)');
  for (const r of w.ranges) lines.push(`  restorable ${isoOf(r.from)} .. ${isoOf(r.to)}`);
  for (const g of w.gaps) lines.push(`  gap        ${isoOf(g.from)} .. ${isoOf(g.to)}: ${printable(g.reason)}`);
  return `${lines.join('\n')}\n`;
}

function renderOutcome(o: PointInTimeOutcome): string {
  // A PostgreSQL restore leaves a data directory; a SQLite one a database file.
  const ready = o.into && isDirectory(o.into) ? ' (recovered, promoted and stopped: a data directory ready to start)' : '';
  const where = o.into ? `into ${printable(o.into)}${ready}` : `over ${printable(o.database)}`;
  const last = o.lastTransactionAt ? `; last transaction it holds committed at ${o.lastTransactionAt.toISOString()}` : '';
  const safety = o.safetyBackup ? `\n  previous contents saved to ${printable(o.safetyBackup)}` : '';
  return `restored ${printable(o.database)} to ${o.time.toISOString()} ${where} from ${printable(o.base)} (${o.source}) in ${formatSeconds(o.durationSeconds)}${last}${safety}\n`;
}

function outcomeJson(o: PointInTimeOutcome): Record<string, unknown> {
  return {
    database: o.database,
    time: o.time.toISOString(),
    base: o.base,
    source: o.source,
    last_transaction_at: o.lastTransactionAt?.toISOString() ?? null,
    into: o.into ?? null,
    safety_backup: o.safetyBackup ?? null,
    duration_seconds: o.durationSeconds,
  };
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}
