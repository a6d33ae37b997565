/**
 * What the backup tests share: a `Backups` over a config written for the
 * test, the outcomes it reported, an independent writer process, and
 * small-file-system mounts for disk-full cases.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { Backups, type BackupOutcome } from '../../src/backup/backups.js';
import { parseConfig, scrubSecrets, type Config } from '../../src/config/load.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { repoRoot } from '../support/paths.js';

export interface BackupFixture {
  backups: Backups;
  config: Config;
  outcomes: BackupOutcome[];
}

/** A Backups over `databases` (name → URL; the first is the primary) with `backup` settings. */
export function backupsFor(
  dir: string,
  databases: Record<string, string>,
  backup: Record<string, unknown> = {},
  log: Logger = silentLogger(),
): BackupFixture {
  const entries = Object.entries(databases).map(([name, url], i) => [name, { type: i === 0 ? 'primary' : 'secondary', priority: i, url }]);
  const text = stringify({
    disaster_recovery: {
      enabled: true,
      databases: Object.fromEntries(entries),
      backup: { backup_dir: path.join(dir, 'backups'), enable_auto_backup: false, ...backup },
    },
  });
  const config = parseConfig(text, path.join(dir, 'config.yaml'), {}, dir);
  const backups = new Backups({
    config,
    log,
    currentPrimary: () => config.databases[0]!.name,
    scrub: (t) => scrubSecrets(t, config.secrets),
  });
  const outcomes: BackupOutcome[] = [];
  backups.onOutcome((o) => outcomes.push(o));
  return { backups, config, outcomes };
}

export function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Flips every bit of the byte at `offset` (default: the middle of the file). */
export function corruptOneByte(file: string, offset?: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const at = offset ?? Math.floor(fs.fstatSync(fd).size / 2);
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** Files in a folder, hidden (temporary) ones included, sorted. */
export const filesIn = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

/**
 * Another process inserting into the `images` table of a SQLite file, one
 * row per transaction, as fast as it can (an application under load).
 */
export function startSqliteWriter(file: string): { child: ChildProcess; stop(): Promise<void> } {
  const script = `
    const Database = require(${JSON.stringify(path.join(repoRoot, 'node_modules', 'better-sqlite3'))});
    const db = new Database(process.argv[1], { timeout: 10000 });
    const insert = db.prepare("INSERT INTO images (url, file_path, file_size, format) VALUES (?, ?, ?, 'jpeg')");
    let i = 0, stop = false;
    process.on('SIGTERM', () => { stop = true; });
    const tick = () => { for (let k = 0; k < 20 && !stop; k++, i++) insert.run('https://writer.example/' + process.pid + '/' + i, 'w/' + i, i); if (stop) { db.close(); process.exit(0); } setImmediate(tick); };
    tick();`;
  const child = spawn(process.execPath, ['-e', script, file], { stdio: 'ignore' });
  return {
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * A small tmpfs at `dir` (a full disk, or a read-only one). Needs root and a
 * kernel that lets this process mount; returns undefined where it cannot.
 */
export function mountTmpfs(dir: string, options: string): (() => void) | undefined {
  fs.mkdirSync(dir, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) return undefined;
  return () => {
    spawnSync('umount', ['-l', dir]);
  };
}
