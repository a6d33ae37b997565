import type { ArchiveVerification } from '../../backup/point-in-time.js';
import type { Command } from 'commander';
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
      const [results, archives] = await withService(
        config,
        backupLogger(config),
        async (service) => {
          const checked = await service.backups.verify(file, (r) => {
            if (!json) process.stdout.write(renderResult(r));
          });
          // One backup file named: that file only. Else the archives too (a restore to a moment of each window).
          const proven = file === undefined ? await service.pointInTime.verify() : [];
          if (!json) for (const a of proven) process.stdout.write(renderArchive(a));
          return [checked, proven] as const;
        },
        'if-present',
      );
      const bad = [...results.filter((r) => !r.ok), ...archives.filter((a) => !a.ok).map((a) => ({ file: `archive of ${a.database}`, detail: a.detail }))];
      if (json) printJson(archives.length === 0 ? results : { backups: results, archives: archives.map(archiveJson) });
      else if (results.length === 0 && archives.length === 0) process.stdout.write(`no backups under ${config.backup.backup_dir}\n`);
      else process.stdout.write(`${results.length} backup(s) checked, ${results.filter((r) => !r.ok).length} bad${archives.length > 0 ? `; ${archives.length} archive(s) checked, ${archives.filter((a) => !a.ok).length} bad` : ''}\n`);
      if (bad.length > 0) {
        process.stderr.write(`error: ${bad.length} backup(s) failed verification:\n${bad.map((r) => `  - ${printable(r.file)}: ${printable(r.detail)}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });
}

function renderArchive(a: ArchiveVerification): string {
  const gaps = a.gaps.map((g) => `\n     gap ${g.from.toISOString()} .. ${g.to.toISOString()}: ${printable(g.reason)}`).join('');
  return `${a.ok ? 'ok ' : 'BAD'}  archive of ${printable(a.database)}  ${printable(a.detail)}${gaps}\n`;
}

function archiveJson(a: ArchiveVerification): Record<string, unknown> {
  return { database: a.database, ok: a.ok, detail: a.detail, gaps: a.gaps.map((g) => ({ from: g.from.toISOString(), to: g.to.toISOString(), reason: g.reason })) };
}

export function renderResult(r: VerifyResult): string {
  return `${r.ok ? 'ok ' : 'BAD'}  ${printable(r.file)}  ${printable(r.detail)}\n`;
}
