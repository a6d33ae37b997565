import readline from 'node:readline/promises';
import type { Command } from 'commander';
import { FOREIGN_FORMATS } from '../../backup/foreign-backup.js';
import type { RestoreOutcome, RestorePlan } from '../../backup/restore.js';
import { DrError, InputError } from '../../errors.js';
import { loadCommandConfig, optionsOf, printJson, withService } from '../context.js';
import { formatBytes, formatSeconds, printable } from '../format.js';
import { backupLogger } from './backup.js';
import { runPointInTime, type PointInTimeFlags } from './restore-to-time.js';

interface RestoreFlags {
  database?: string;
  yes?: boolean;
  allowOutsideBackupDir?: boolean;
  skipSafetyBackup?: boolean;
  /** commander's `--no-manifest`: false when given. */
  manifest?: boolean;
}

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('restore a backup over a database (default: the current primary), after saving what it holds')
    .argument('[file]', 'the backup file (its manifest must be beside it, unless --no-manifest); none with --to-time or --list-times')
    .option('--database <name>', 'database to restore over (default: the current primary)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--allow-outside-backup-dir', 'accept a backup file that is not under backup_dir')
    .option('--no-manifest', 'a backup made elsewhere, without a manifest: plain SQL (.sql, .sql.gz), a pg_dump custom archive, or a SQLite file; no checksum or row counts are checked')
    .option('--skip-safety-backup', 'do not save the current contents first (for a database that can no longer be read)')
    .option('--to-time <time>', 'restore the state as of this ISO 8601 time (every transaction committed at or before it) from a full backup and the archive')
    .option('--into <dir>', 'PostgreSQL, with --to-time: leave a recovered data directory in this new folder instead of replacing the database')
    .option('--list-times', 'show the window each database can be restored into (--to-time)')
    .option('--json', 'print the outcome as JSON')
    .action(async (file: string | undefined, flags: RestoreFlags & PointInTimeFlags, command: Command) => {
      const config = loadCommandConfig(command);
      if (flags.listTimes || flags.toTime !== undefined) return runPointInTime(file, flags, command, config);
      if (file === undefined) throw new InputError('restore needs a backup file, or --to-time TIME, or --list-times');
      const outcome = await withService(config, backupLogger(config), async (service) => {
        // Not in the local folder (lost with the machine?): from the first offsite destination that has it, checksum checked.
        const fetched = flags.manifest === false ? undefined : await service.backups.fetchOffsite(file);
        try {
          const plan = service.backups.planRestore({
            file: fetched?.file ?? file,
            database: flags.database,
            allowOutsideBackupDir: flags.allowOutsideBackupDir,
            noManifest: flags.manifest === false,
          });
          const source = fetched ? `${fetched.backup.storage.name}/${fetched.backup.key}` : undefined;
          await confirm(source ? { ...plan, file: source } : plan, flags.yes === true);
          const done = await service.backups.restore(plan, { skipSafetyBackup: flags.skipSafetyBackup });
          return source ? { ...done, file: source } : done;
        } finally {
          fetched?.release();
        }
      });
      if (optionsOf(command).json) printJson(outcome);
      else process.stdout.write(renderRestore(outcome));
    });
}

export function describePlan(plan: RestorePlan): string {
  const where = plan.target.target.engine === 'sqlite' ? plan.target.target.file : plan.target.displayUrl;
  return [
    `Restore ${printable(plan.file)}`,
    `  ${describeSource(plan)}`,
    `  over database ${plan.target.name}: ${where}`,
    `Its current contents are replaced (a safety backup of them is taken first).`,
  ].join('\n');
}

/** Asks on a terminal; without one, only --yes lets a restore overwrite a database. */
function describeSource(plan: RestorePlan): string {
  const m = plan.manifest;
  if (!m) {
    const compressed = plan.foreign.compressed ? ', gzipped' : '';
    return `a ${FOREIGN_FORMATS[plan.foreign.format].shown}${compressed} made elsewhere: no manifest, so no checksum and no row counts are checked`;
  }
  const rows = m.tables ? `, ${Object.values(m.tables).reduce((a, b) => a + b, 0)} rows` : '';
  return `taken from ${m.database} at ${m.created_at} (${m.engine}, ${formatBytes(m.size_bytes)}${rows})`;
}

async function confirm(plan: RestorePlan, yes: boolean): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) {
    throw new InputError(`restore would overwrite database ${plan.target.name}; there is no terminal to confirm on, so pass --yes to confirm`);
  }
  const prompt = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${describePlan(plan)}\nProceed? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new DrError('restore cancelled; nothing was changed');
  } finally {
    prompt.close();
  }
}

export function renderRestore(o: RestoreOutcome): string {
  const safety = o.safety_backup ? `  previous contents saved to ${o.safety_backup.path}` : '  no safety backup (nothing to save, or --skip-safety-backup)';
  const found = o.restored ? `  afterwards: ${o.restored.detail}; ${Object.entries(o.restored.tables).map(([t, n]) => `${t} ${n}`).join(', ') || 'no tables'}\n` : '';
  return `restored ${printable(o.file)} over ${o.database} in ${formatSeconds(o.duration_seconds)}\n${safety}\n${found}`;
}
