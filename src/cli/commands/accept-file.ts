import type { Command } from 'commander';
import type { SqliteIdentityRecord } from '../../state/store.js';
import { commandLogger, loadCommandConfig, optionsOf, printJson, withService } from '../context.js';

export function registerAcceptFile(program: Command): void {
  program
    .command('accept-file')
    .description("accept the SQLite file now at DATABASE's path as its data (after replacing it on purpose); a running sidecar stops calling it lost")
    .argument('<database>', 'the SQLite database whose file was replaced')
    .option('--json', 'print the identities before and after as JSON')
    .action(async (database: string, _options, command: Command) => {
      const config = loadCommandConfig(command);
      const { before, after } = await withService(config, commandLogger(config), (service) => service.acceptFile(database));
      if (optionsOf(command).json) printJson({ database, file: after.file, before: before ?? null, after });
      else process.stdout.write(renderAccepted(database, before, after));
    });
}

function describeIdentity(r: SqliteIdentityRecord): string {
  const { dev, ino, pages, changeCounter, tables } = r.identity;
  return `device:inode ${dev}:${ino}, ${pages} pages, change counter ${changeCounter}${tables !== undefined ? `, ${tables} tables` : ''}`;
}

function renderAccepted(database: string, before: SqliteIdentityRecord | undefined, after: SqliteIdentityRecord): string {
  const lines = [`${database}: ${after.file} accepted as its data (${describeIdentity(after)})`];
  lines.push(before ? `   before: ${describeIdentity(before)} (${before.source}, seen ${new Date(before.since).toISOString()})` : '   before: nothing recorded');
  lines.push('   a running sidecar probes it as this file from now on; replication from it (WAL shipping) resumes while it is the primary and up');
  return `${lines.join('\n')}\n`;
}
