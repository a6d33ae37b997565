import type { Command } from 'commander';
import { drillSummary } from '../../drill/drill-record.js';
import { failoverRecordJson, MAX_HISTORY_LIMIT, parseHistoryLimit } from '../../failover/history.js';
import type { FailoverRecord } from '../../state/store.js';
import { commandLogger, loadCommandConfig, optionsOf, printJson, withService, withStore } from '../context.js';
import { printable } from '../format.js';

export function registerFailover(program: Command): void {
  program
    .command('failover')
    .description('manual failover / switchover to TARGET (lossless while the primary is up)')
    .argument('<target>', 'database to make the primary')
    .option('--reason <text>', 'why (kept in the history)', 'manual failover')
    .option('--json', 'print the history entry as JSON')
    .action(async (target: string, options: { reason: string }, command: Command) => {
      const config = loadCommandConfig(command);
      const record = await withService(config, commandLogger(config), (service) =>
        service.failover({ trigger: 'manual', target, reason: options.reason, ifPrimaryAnswers: 'switch over' }),
      );
      if (optionsOf(command).json) printJson(failoverRecordJson(record));
      else process.stdout.write(renderFailover(record));
    });

  program
    .command('history')
    .description('failover history, newest first')
    .option('--limit <n>', `how many entries (1 to ${MAX_HISTORY_LIMIT})`, '20')
    .option('--json', 'print as JSON')
    .action(async (options: { limit: string }, command: Command) => {
      const limit = parseHistoryLimit(options.limit, '--limit');
      const config = loadCommandConfig(command);
      const records = await withStore(config, (store) => store.history(limit));
      if (optionsOf(command).json) printJson(records.map(failoverRecordJson));
      else process.stdout.write(records.length === 0 ? 'no failover yet\n' : records.map(renderFailover).join('\n'));
    });

  for (const [name, enabled] of [['enable-auto-failover', true], ['disable-auto-failover', false]] as const) {
    program
      .command(name)
      .description(`${enabled ? 'enable' : 'disable'} automatic failover (persisted; overrides the config)`)
      .action(async (_options, command: Command) => {
        const config = loadCommandConfig(command);
        await withService(config, commandLogger(config), (service) => service.setAutoFailover(enabled));
        process.stdout.write(`automatic failover ${enabled ? 'enabled' : 'disabled'}\n`);
      });
  }

  program
    .command('reinstate')
    .description('let a demoted former primary be chosen by automatic failover again')
    .argument('<database>')
    .action(async (database: string, _options, command: Command) => {
      const config = loadCommandConfig(command);
      await withService(config, commandLogger(config), (service) => service.reinstate(database));
      process.stdout.write(`${printable(database)} may be chosen by automatic failover again\n`);
    });
}

/** An entry in lines of its own: reasons and errors come from outside, so each field is made printable. */
export function renderFailover(r: FailoverRecord): string {
  const phases = Object.entries(r.phases)
    .map(([phase, ms]) => `${phase} ${ms} ms`)
    .join(', ');
  const lines = [
    `#${r.id ?? '-'} ${r.startedAt}  ${r.trigger}  ${printable(r.from ?? '-')} -> ${printable(r.to ?? '-')}  ${r.result.toUpperCase()}${r.epoch !== null ? `  (epoch ${r.epoch})` : ''}`,
    `   reason: ${printable(r.reason)}`,
  ];
  if (r.error) lines.push(`   error: ${printable(r.error)}`);
  if (r.dataSync) {
    const lag = r.dataSync.lagSeconds !== undefined ? `, data ${r.dataSync.lagSeconds.toFixed(1)} s behind` : '';
    lines.push(`   data sync: ${r.dataSync.method}, ${r.dataSync.complete ? 'complete' : 'NOT complete'}${lag}: ${printable(r.dataSync.detail)}`);
  }
  if (phases) lines.push(`   phases: ${phases}`);
  if (r.formerPrimary) lines.push(`   former primary: ${r.formerPrimary.note}`);
  if (r.drill) lines.push(`   drill: ${printable(drillSummary(r.drill))}`);
  return `${lines.join('\n')}\n`;
}
