import type { Command } from 'commander';
import type { VerifyResult } from '../../backup/verify.js';
import { buildBackups } from '../../sidecar.js';
import { loadCommandConfig, optionsOf, printJson } from '../context.js';
import { printable } from '../format.js';
import { backupLogger } from './backup.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check backups: checksum, then a real restore into a scratch place; exit 1 naming each bad one')
    .argument('[file]', 'one backup file (default: every backup under backup_dir)')
    .option('--json', 'print the results as JSON')
    .action(async (file: string | undefined, _options, command: Command) => {
      const config = loadCommandConfig(command);
      const json = optionsOf(command).json === true;
      // The backups alone: verifying needs neither the state store nor the databases.
      const backups = buildBackups(config, backupLogger(config), () => undefined);
      const results = await backups.verify(file, (r) => {
        if (!json) process.stdout.write(renderResult(r));
      });
      const bad = results.filter((r) => !r.ok);
      if (json) printJson(results);
      else if (results.length === 0) process.stdout.write(`no backups under ${config.backup.backup_dir}\n`);
      else process.stdout.write(`${results.length} backup(s) checked, ${bad.length} bad\n`);
      if (bad.length > 0) {
        process.stderr.write(`error: ${bad.length} backup(s) failed verification:\n${bad.map((r) => `  - ${printable(r.file)}: ${printable(r.detail)}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });
}

export function renderResult(r: VerifyResult): string {
  return `${r.ok ? 'ok ' : 'BAD'}  ${printable(r.file)}  ${printable(r.detail)}\n`;
}
