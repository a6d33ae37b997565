import type { Command } from 'commander';
import type { PointInTimeOutcome } from '../../backup/point-in-time.js';
import { InputError } from '../../errors.js';
import { restoreWindowStatus, type RestoreWindowStatus } from '../../status.js';
import { loadCommandConfig, optionsOf, printJson, withService } from '../context.js';
import { formatSeconds, printable } from '../format.js';
import { backupLogger } from './backup.js';
import { confirmOverwrite } from './restore.js';

export interface PointInTimeFlags {
  database?: string;
  yes?: boolean;
  toTime?: string;
  into?: string;
  listTimes?: boolean;
}

/** `restore --to-time T [--database D] [--into FILE]`. */
export async function restoreToTime(flags: PointInTimeFlags, command: Command): Promise<void> {
  const time = parseTime(flags.toTime!);
  const config = loadCommandConfig(command);
  const outcome = await withService(config, backupLogger(config), (service) =>
    service.pointInTime.restore({ database: flags.database ?? '', time, ...(flags.into ? { into: flags.into } : {}) }, (db) =>
      confirmOverwrite(`Restore ${db.name} to ${time.toISOString()} from its archive\n  over ${db.target.engine === 'sqlite' ? db.target.file : db.displayUrl}\nIts current contents are replaced (a safety backup of them is taken first).`, db.name, flags.yes === true),
    ),
  );
  if (optionsOf(command).json) printJson(outcomeJson(outcome));
  else process.stdout.write(renderOutcome(outcome));
}

/** `restore --list-times [--database D]`. */
export async function listTimes(flags: PointInTimeFlags, command: Command): Promise<void> {
  const config = loadCommandConfig(command);
  const windows = await withService(config, backupLogger(config), (service) => service.pointInTime.windows(flags.database), 'if-present');
  const shown = windows.map(restoreWindowStatus);
  if (optionsOf(command).json) printJson(shown);
  else process.stdout.write(shown.length === 0 ? 'no archived database (backup.archive.enabled)\n' : shown.map(renderWindow).join(''));
}

/** An ISO 8601 time with its zone: a time without one would mean the clock of whichever machine reads it. */
export function parseTime(text: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;
  const ms = Date.parse(text.replace(' ', 'T'));
  if (!iso.test(text.trim()) || Number.isNaN(ms)) {
    throw new InputError(`--to-time ${JSON.stringify(text)}: expected an ISO 8601 time with its zone, such as 2026-11-30T14:03:07Z or 2026-11-30T22:03:07+08:00`);
  }
  return new Date(ms);
}

export function renderWindow(w: RestoreWindowStatus): string {
  const lines = [`${printable(w.database)} (${w.engine}): ${w.ranges.length === 0 ? 'nothing archived yet' : w.ranges.map((r) => `${r.from} .. ${r.to}`).join(', ')}`];
  for (const gap of w.gaps) lines.push(`  gap ${gap.from} .. ${gap.to}: ${printable(gap.reason)}`);
  return `${lines.join('\n')}\n`;
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

function renderOutcome(o: PointInTimeOutcome): string {
  const last = o.lastTransactionAt ? `its last transaction seen committed at ${o.lastTransactionAt.toISOString()}` : 'no transaction after the snapshot';
  const where = o.into ? `written into ${printable(o.into)}` : `restored over ${printable(o.database)}`;
  const safety = o.into ? '' : o.safetyBackup ? `  previous contents saved to ${printable(o.safetyBackup)}\n` : '  no safety backup (nothing to save)\n';
  return `${printable(o.database)} as of ${o.time.toISOString()} ${where} in ${formatSeconds(o.durationSeconds)} (${last}; from ${printable(o.base)} in ${o.source})\n${safety}`;
}
