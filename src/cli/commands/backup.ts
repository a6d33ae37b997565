import { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { BackupRecord } from '../../backup/backups.js';
import type { DumpProgress } from '../../backup/engine-backup.js';
import type { Config } from '../../config/load.js';
import { createLogger, type Logger } from '../../log.js';
import { commandLogger, loadCommandConfig, optionsOf, printJson, withService } from '../context.js';
import { formatBytes, formatSeconds, printable } from '../format.js';

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('create a backup (default: of the current primary); prints its path, size, checksum and duration')
    .option('--name <name>', 'name of the backup file (letters and digits of any script, "_", "-", ".")', 'backup')
    .option('--database <name>', 'database to back up (default: the current primary)')
    .option('--json', 'print the backup\'s manifest as JSON')
    .action(async (options: { name: string; database?: string }, command: Command) => {
      const config = loadCommandConfig(command);
      const progress = new ProgressLine(process.stderr, 'backup');
      try {
        const record = await withService(config, backupLogger(config), (service) =>
          service.backup({ name: options.name, database: options.database, trigger: 'manual', onProgress: (p) => progress.update(p) }),
        );
        progress.clear();
        if (optionsOf(command).json) printJson(record);
        else process.stdout.write(renderBackup(record));
      } finally {
        progress.clear();
      }
    });
}

export function renderBackup(r: BackupRecord): string {
  const source = r.source.size_bytes === null ? '' : `; database ${formatBytes(r.source.size_bytes)}`;
  const compression = r.compression === 'gzip' ? `gzip level ${r.compression_level}` : 'not compressed';
  const rows = r.tables ? Object.entries(r.tables).map(([table, n]) => `${table} ${n}`).join(', ') || 'no tables' : 'not counted';
  return [
    `backup of ${r.database}: ${printable(r.path)}`,
    `  size      ${formatBytes(r.size_bytes)} (${r.size_bytes} bytes, ${compression}${source})`,
    `  sha256    ${r.sha256}`,
    `  duration  ${formatSeconds(r.duration_seconds)}`,
    `  snapshot  ${r.created_at}`,
    `  rows      ${rows}`,
    '',
  ].join('\n');
}

/**
 * What the backup commands log: every line to the log file when one is
 * configured (the guide's `grep backup`), nothing on stderr (the command
 * prints its own result or error) unless debugging.
 */
export function backupLogger(config: Config): Logger {
  if (config.logging.level === 'debug' || config.logging.level === 'trace') return commandLogger(config);
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  return createLogger({ level: config.logging.file ? config.logging.level : 'silent', secrets: config.secrets, destination: discard, file: config.logging.file });
}

/**
 * One self-rewriting line on a terminal for operations that take more than a
 * second; nothing at all when the stream is not a terminal (scripts, logs).
 */
export class ProgressLine {
  private readonly started = performance.now();
  private lastDrawn = 0;
  private shown = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly what: string,
  ) {}

  update(p: DumpProgress): void {
    if (!this.out.isTTY) return;
    const now = performance.now();
    if (now - this.started < 1000 || now - this.lastDrawn < 200) return;
    this.lastDrawn = now;
    const rate = p.phase === 'write' ? `  ${(p.doneBytes / 1e6 / ((now - this.started) / 1000)).toFixed(1)} MB/s` : '';
    const amount = p.totalBytes ? `${Math.floor((100 * p.doneBytes) / p.totalBytes)}%  ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)}` : formatBytes(p.doneBytes);
    const phase = p.phase === 'copy' ? 'taking a consistent copy' : 'compressing and writing';
    this.out.write(`\r\x1b[K${this.what}: ${phase}  ${amount}${rate}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
