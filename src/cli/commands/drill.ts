import type { Command } from 'commander';
import { drillKindsOf, drillReportJson, drillSummary } from '../../drill/drill-record.js';
import type { FailoverRecord } from '../../state/store.js';
import { commandLogger, loadCommandConfig, optionsOf, printJson, withService } from '../context.js';
import { printable } from '../format.js';

export function registerDrill(program: Command): void {
  program
    .command('drill')
    .description('drills on the live cluster: a switchover to the best secondary and back (write outage measured), and a restore of the newest backup into a scratch place')
    .option('--switchover-only', 'only the switchover drill')
    .option('--restore-only', 'only the restore drill')
    .option('--database <name>', 'the database whose newest backup the restore drill restores (default: the current primary)')
    .option('--json', 'print the drills\' history entries as JSON')
    .action(async (options: { switchoverOnly?: boolean; restoreOnly?: boolean; database?: string }, command: Command) => {
      const kinds = drillKindsOf(options);
      const config = loadCommandConfig(command);
      const records = await withService(config, commandLogger(config), (service) => service.drill({ kinds, database: options.database, requestedBy: 'manual' }));
      if (optionsOf(command).json) printJson(records.map((r) => ({ id: r.id ?? null, started_at: r.startedAt, finished_at: r.finishedAt, ...drillReportJson(r.drill!) })));
      else process.stdout.write(records.map(renderDrill).join(''));
      // Every drill must have succeeded: a skipped one proved nothing (scripts and cron see it).
      if (records.some((r) => r.drill?.result !== 'success')) process.exitCode = 1;
    });
}

function renderDrill(r: FailoverRecord): string {
  const d = r.drill!;
  const lines = [`#${r.id ?? '-'} ${printable(drillSummary(d))}`];
  if (d.restore) lines.push(`   point in time: ${printable(d.restore.pointInTime.detail)}`);
  return `${lines.join('\n')}\n`;
}
