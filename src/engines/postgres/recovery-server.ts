import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import pg from 'pg';
import { DrError } from '../../errors.js';
import { pgServerBinary } from './server-binaries.js';
import { handOver, serverUser } from './server-user.js';

/** A WAL file the recovery may ask for (a segment or a timeline history), read from whichever storage has it. */
export interface WalSource {
  name: string;
  gzipped: boolean;
  open(): Promise<Readable>;
}

export type RecoveryTarget = { time: Date } | 'immediate' | 'end';

/** The folder inside the data directory the restore_command copies from; removed once recovery ended. */
const STAGING = 'dr_sidecar_restore_wal';
const HBA_SAVED = 'pg_hba.conf.dr-sidecar-saved';

/**
 * A data directory made from a base backup (a tar stream) and archived WAL,
 * recovered by a temporary server to `target` and promoted. The server
 * listens on a private Unix socket only (no TCP port: nothing else can reach
 * it), trusts local connections while it runs, and gets the original
 * pg_hba.conf back when it stops.
 */
export class RecoveryServer {
  readonly socketDir: string;
  private readonly port = 5432;
  private running = false;

  constructor(
    readonly dataDir: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-pitr-sock-'));
  }

  /** Extracts the base backup and stages the WAL; the data directory must be empty or absent. */
  async prepare(baseTar: Readable, wal: readonly WalSource[], target: RecoveryTarget): Promise<void> {
    fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(this.dataDir, 0o700);
    if (fs.readdirSync(this.dataDir).length > 0) throw new DrError(`${this.dataDir} is not empty: a restore writes a data directory into an empty or new folder only`);
    await untar(baseTar, this.dataDir);
    // The base backup's own copy of the WAL it needs is superseded by the staged archive.
    const staging = path.join(this.dataDir, STAGING);
    fs.mkdirSync(staging, { mode: 0o700 });
    for (const file of wal) {
      const body = await file.open();
      await pipeline(file.gzipped ? body.pipe(zlib.createGunzip()) : body, fs.createWriteStream(path.join(staging, file.name), { mode: 0o600 }));
    }
    fs.rmSync(path.join(this.dataDir, 'postmaster.pid'), { force: true });
    fs.renameSync(path.join(this.dataDir, 'pg_hba.conf'), path.join(this.dataDir, HBA_SAVED));
    fs.writeFileSync(path.join(this.dataDir, 'pg_hba.conf'), 'local all all trust\n', { mode: 0o600 });
    fs.appendFileSync(path.join(this.dataDir, 'postgresql.auto.conf'), recoverySettings(staging, target));
    fs.writeFileSync(path.join(this.dataDir, 'recovery.signal'), '', { mode: 0o600 });
    await handOver(this.dataDir);
    await handOver(this.socketDir);
  }

  /** Starts the server, waits until recovery reached its target and the server was promoted. */
  async recover(timeoutMs: number): Promise<Date | undefined> {
    const logFile = path.join(this.socketDir, 'server.log');
    const options = [`-c port=${this.port}`, "-c listen_addresses=''", `-c unix_socket_directories='${this.socketDir}'`, '-c archive_mode=off', '-c logging_collector=off', '-c hot_standby=on', "-c shared_preload_libraries=''"];
    const started = await runAsServer(pgServerBinary('pg_ctl'), ['start', '-D', this.dataDir, '-l', logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-o', options.join(' ')]);
    this.running = true;
    if (started.code !== 0) {
      const said = started.out.trim().split('\n').filter(Boolean).slice(-2).join(' | ');
      throw new DrError(`the recovery server did not start in ${this.dataDir}: ${said} | ${lastLines(logFile)}${serverUser() && /ermission denied/.test(started.out + lastLines(logFile)) ? ' (it runs as the "postgres" user: every folder above the data directory must let that user through)' : ''}`);
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const inRecovery = await this.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r', 'postgres').then((rows) => rows[0]!.r).catch(() => undefined);
      if (inRecovery === false) break;
      if (!fs.existsSync(path.join(this.dataDir, 'postmaster.pid'))) throw new DrError(`recovery failed: ${lastLines(logFile)}`);
      if (Date.now() > deadline) throw new DrError(`recovery did not finish within ${timeoutMs / 1000} s: ${lastLines(logFile)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    this.log(`recovered: ${lastLines(logFile, 3)}`);
    return lastTransactionIn(fs.readFileSync(logFile, 'utf8'));
  }

  /** A connection on the private socket, as `user` (the role the sidecar uses on the source: it exists in the copy). */
  connectionFor(database: string, user = 'postgres'): pg.ClientConfig {
    return { host: this.socketDir, port: this.port, database, user, application_name: 'dr-sidecar restore' };
  }

  async query<T>(sql: string, database: string, user = 'postgres'): Promise<T[]> {
    const client = new pg.Client(this.connectionFor(database, user));
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query(sql)).rows as T[];
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Stops the server cleanly, removes the staged WAL, puts the original pg_hba.conf back. */
  async stop(): Promise<void> {
    if (this.running) {
      await runAsServer(pgServerBinary('pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-t', '120']);
      this.running = false;
    }
    fs.rmSync(path.join(this.dataDir, STAGING), { recursive: true, force: true });
    const saved = path.join(this.dataDir, HBA_SAVED);
    if (fs.existsSync(saved)) fs.renameSync(saved, path.join(this.dataDir, 'pg_hba.conf'));
    fs.rmSync(this.socketDir, { recursive: true, force: true });
  }
}

function recoverySettings(staging: string, target: RecoveryTarget): string {
  const lines = [
    '',
    '# Written by dr-sidecar for a point-in-time restore; the restore removes the staged WAL when recovery ended.',
    `restore_command = 'cp "${staging}/%f" "%p"'`,
    "recovery_target_timeline = 'latest'",
  ];
  if (target === 'immediate') lines.push("recovery_target = 'immediate'", "recovery_target_action = 'promote'");
  else if (target !== 'end') {
    // Inclusive: every transaction committed at or before the time, none after.
    lines.push(`recovery_target_time = '${target.time.toISOString().replace('T', ' ').replace('Z', '+00')}'`, "recovery_target_inclusive = 'on'", "recovery_target_action = 'promote'");
  }
  return `${lines.join('\n')}\n`;
}

async function untar(tar: Readable, dir: string): Promise<void> {
  const child = spawn('tar', ['-x', '-f', '-', '-C', dir, '--no-same-owner'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
  child.stdin.on('error', () => undefined);
  await pipeline(tar, child.stdin).catch(() => undefined);
  const code = await exited;
  if (code !== 0) throw new DrError(`extracting the base backup failed: ${stderr.trim().split('\n').at(-1) ?? code}`);
}

function runAsServer(program: string, args: string[]): Promise<{ code: number; out: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  const child = spawn(program, args, { env, cwd: os.tmpdir(), ...serverUser(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ code: -1, out: error.message }));
    child.once('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** `last completed transaction was at log time 2026-11-30 07:35:01.123456+00`: the newest commit the result holds. */
export function lastTransactionIn(log: string): Date | undefined {
  const matches = [...log.matchAll(/last completed transaction was at log time (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::?\d\d)?)?/g)];
  const last = matches.at(-1);
  if (!last) return undefined;
  const zone = last[2] ? (last[2].length === 3 ? `${last[2]}:00` : last[2]) : 'Z';
  return new Date(`${last[1]!.replace(' ', 'T')}${zone}`);
}

function lastLines(file: string, count = 4): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-count).join(' | ');
  } catch {
    return '(no server log)';
  }
}
