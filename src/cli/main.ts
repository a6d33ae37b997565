import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, DrError } from '../errors.js';
import { printable } from './format.js';
import { runShutdownHooks } from './lifecycle.js';
import { registerAcceptFile } from './commands/accept-file.js';
import { registerBackup } from './commands/backup.js';
import { registerDrill } from './commands/drill.js';
import { registerFailover } from './commands/failover.js';
import { registerRules } from './commands/rules.js';
import { registerRestore } from './commands/restore.js';
import { registerStartMonitoring } from './commands/start-monitoring.js';
import { registerStatus } from './commands/status.js';
import { registerTest } from './commands/test.js';
import { registerVerify } from './commands/verify.js';

export function buildProgram(): Command {
  const program = new Command('disaster-recovery')
    .description('Disaster-recovery sidecar for SQLite and PostgreSQL databases')
    .version(packageVersion(), '-V, --version', 'print the version of dr-sidecar')
    .option('-c, --config <path>', 'config file (default: $DR_CONFIG or config/config.yaml)')
    .showHelpAfterError()
    .exitOverride();
  registerStatus(program);
  registerTest(program);
  registerStartMonitoring(program);
  registerFailover(program);
  registerRules(program);
  registerBackup(program);
  registerRestore(program);
  registerVerify(program);
  registerAcceptFile(program);
  registerDrill(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** The package's version, from its package.json (this file runs from dist/src/cli). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Runs the CLI: a user's mistake is one line on stderr and a non-zero exit, never a stack. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed the message (or the help/version it was asked for)
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof DrError) {
      process.stderr.write(`error: ${shown(error)}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`error: ${printable((error as Error)?.message ?? String(error))}\n`);
    if (process.env.DR_DEBUG) process.stderr.write(`${(error as Error)?.stack}\n`);
    process.exitCode = 1;
  } finally {
    await runShutdownHooks();
  }
}

/** One line, except a config error's list of problems (a line each); names and reasons in it come from outside. */
function shown(error: DrError): string {
  return error instanceof ConfigError ? error.message.split('\n').map(printable).join('\n') : printable(error.message);
}
