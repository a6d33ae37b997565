import type { Command } from 'commander';
import type { ArchiveVerification } from '../../backup/point-in-time.js';
import type { VerifyResult } from '../../backup/verify.js';
import { loadCommandConfig, optionsOf, printJson, withService } from '../context.js';
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
      const [results, archives] = await withService(config, backupLogger(config), async (service) => {
        const checked = await service.backups.verify(file, (r) => {
          if (!json) process.stdout.write(renderResult(r));
        });
        // The archive is proven by a restore to a moment inside its window, and its gaps are named.
        const proven = file === undefined ? await service.verifyArchives() : [];
        if (!json) for (const a of proven) process.stdout.write(renderArchive(a));
        return [checked, proven] as const;
      }, 'if-present');
      const bad = [...results, ...archives.map((a) => ({ ...a, file: `archive of ${a.database}` }))].filter((r) => !r.ok);
      if (json) printJson([...results, ...archives.map((a) => ({ file: `archive of ${a.database}`, database: a.database, ok: a.ok, detail: a.detail, tables: null, gaps: a.gaps }))]);
      else if (results.length === 0) process.stdout.write(`no backups under ${config.backup.backup_dir}\n`);
      else process.stdout.write(`${results.length} backup(s) checked, ${bad.length} bad\n`);
      if (bad.length > 0) {
        process.stderr.write(`error: ${bad.length} backup(s) failed verification:\n${bad.map((r) => `  - ${printable(r.file)}: ${printable(r.detail)}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });
}

export function renderArchive(a: ArchiveVerification): string {
  const gaps = a.gaps.map((g) => `  gap ${g.from.toISOString()} .. ${g.to.toISOString()}: ${printable(g.reason)}\n`).join('');
  return `archive of ${printable(a.database)}: ${a.ok ? 'ok' : 'BAD'}  ${printable(a.detail)}\n${gaps}`;
}

export function renderResult(r: VerifyResult): string {
  return `${r.ok ? 'ok ' : 'BAD'}  ${printable(r.file)}  ${printable(r.detail)}\n`;
}
