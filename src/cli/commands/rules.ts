import type { Command } from 'commander';
import { renderRuleFile } from '../../alerting/rules.js';
import { loadCommandConfig } from '../context.js';

export function registerRules(program: Command): void {
  program
    .command('rules')
    .description('print the Prometheus rule file generated from the alert rules (disaster-recovery rules > prometheus/rules/dr.rules.yml)')
    .action((_options, command: Command) => {
      process.stdout.write(renderRuleFile(loadCommandConfig(command)));
    });
}
