import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { scrubSecrets } from './config/secrets.js';
import { ensurePrivateFolder, openPrivateFile } from './engines/private-file.js';

export type { Logger } from 'pino';

export interface LogOptions {
  level: string;
  /** Also append lines to this file (the guide's `tail -f logs/...`). */
  file?: string | undefined;
  /** Every line passes through a scrubber for these, whatever code wrote it. */
  secrets?: readonly string[];
  /** Where lines go besides the file; default stdout. The CLI's short commands use stderr. */
  destination?: NodeJS.WritableStream;
}

/**
 * Structured JSON lines. Every line carries `"name":"disaster-recovery"`, and
 * the messages about backups and failovers say so, so the guide's
 * `grep -E "(backup|failover|disaster)"` finds them.
 */
export function createLogger(options: LogOptions): Logger {
  const secrets = options.secrets ?? [];
  const targets: NodeJS.WritableStream[] = [options.destination ?? process.stdout];
  if (options.file) {
    targets.push(fs.createWriteStream(options.file, { fd: openLogFile(options.file) }));
  }
  const stream = {
    write(line: string) {
      const clean = secrets.length > 0 ? scrubSecrets(line, secrets) : line;
      for (const target of targets) target.write(clean);
    },
  };
  return pino(
    {
      name: 'disaster-recovery',
      level: options.level,
      redact: { paths: ['url', 'password', 'auth_token', 'authorization', '*.url', '*.password', 'req.headers.authorization'], censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

/** Appends to the log file; one the sidecar creates (and its folders) is the owner's only. */
function openLogFile(file: string): number {
  ensurePrivateFolder(path.dirname(file));
  try {
    return openPrivateFile(file, 'ax');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return fs.openSync(file, 'a');
  }
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
