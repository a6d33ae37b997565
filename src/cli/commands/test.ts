import type { Command } from 'commander';
import { commandLogger, loadCommandConfig, optionsOf, printJson, withInspection } from '../context.js';
import { displayWidth, printable } from '../format.js';
import { renderProbeLine } from './status.js';

export function registerTest(program: Command): void {
  program
    .command('test')
    .description('probe every enabled database once; exit 1 if any is down')
    .option('--json', 'print the results as JSON')
    .action(async (_options, command: Command) => {
      const config = loadCommandConfig(command);
      const results = await withInspection(config, commandLogger(config), (inspection) => inspection.test(), 'if-present');
      if (optionsOf(command).json) printJson(results);
      else {
        const width = Math.max(...results.map((d) => displayWidth(printable(d.name))));
        for (const d of results) process.stdout.write(`${renderProbeLine(d, width)}\n`);
      }
      if (results.some((d) => d.status !== 'up')) process.exitCode = 1;
    });
}
