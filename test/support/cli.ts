/**
 * Runs the real `disaster-recovery` CLI as a subprocess (`node bin/disaster-recovery.js ...`),
 * the way a user or a script does: its own cwd, its own environment, exit code and both streams.
 * Also: a background `start-monitoring` that is waited for and stopped by a signal, temp
 * sandboxes (a directory per test, removed after) holding a config file and SQLite fixtures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { IMAGES_SCHEMA } from '../../src/demo-data.js';
import { freePort } from './postgres.js';
import { createStateStore } from './state-store.js';

export { freePort };

/** The repository root: this file runs from dist/test/support. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI_BIN = path.join(REPO_ROOT, 'bin', 'disaster-recovery.js');

export interface CliResult {
  /** Exit code; null when the process died of a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  /** Added to the base environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** The process is killed (and the call rejects) after this long. Default 20 s. */
  timeoutMs?: number;
  /** Runs it under this umask (octal, e.g. '000'), through `sh -c 'umask …; exec …'`. */
  umask?: string;
}

/**
 * The environment a CLI child gets: ours, minus everything that could change what the
 * CLI does behind the test's back (DR_* like DR_CONFIG / DR_AUTH_TOKEN, libpq's PG*,
 * node:test's own marker), plus `extra`.
 */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('DR_') || k.startsWith('PG') || k === 'NODE_TEST_CONTEXT') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Every child still running when this process exits is killed. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

interface Spawned {
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
  /** Resolves once the child has exited and both its pipes are drained. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnCli(args: string[], opts: CliOptions): Spawned {
  const [command, argv] = opts.umask === undefined
    ? [process.execPath, [CLI_BIN, ...args]]
    : ['sh', ['-c', `umask ${opts.umask} && exec "$0" "$@"`, process.execPath, CLI_BIN, ...args]];
  const child = spawn(command, argv, { cwd: opts.cwd, env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, output: () => ({ stdout, stderr }), done };
}

const describeOutput = (out: { stdout: string; stderr: string }) =>
  `--- stdout ---\n${out.stdout || '(empty)'}\n--- stderr ---\n${out.stderr || '(empty)'}`;

/** `node bin/disaster-recovery.js ...args` in `cwd`; resolves with the exit code and output. */
export async function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const { child, output, done } = spawnCli(args, opts);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`disaster-recovery ${args.join(' ')} did not exit within ${timeoutMs} ms\n${describeOutput(output())}`));
    }, timeoutMs);
  });
  try {
    const { code, signal } = await Promise.race([done, timeout]);
    return { code, signal, ...output() };
  } finally {
    clearTimeout(timer);
  }
}

export interface StoppedMonitor extends CliResult {
  /** Milliseconds from the signal to the exit. */
  elapsedMs: number;
}

export interface MonitorProcess {
  readonly pid: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** What it wrote so far. */
  output(): { stdout: string; stderr: string };
  /** Sends `signal` and waits (at most `timeoutMs`, then SIGKILL and reject) for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<StoppedMonitor>;
}

export interface MonitorOptions extends CliOptions {
  /** The port the config tells it to serve on. */
  port: number;
  host?: string;
  /** Arguments after `start-monitoring` (e.g. `--config PATH`). */
  args?: string[];
  /** How long to wait for `GET /healthz` to answer 200. Default 15 s. */
  startTimeoutMs?: number;
}

/**
 * `start-monitoring` in the background; resolves once `GET /healthz` answers 200.
 * Rejects (with the process's output) if it exits first or does not answer in time.
 */
export async function startMonitoring(opts: MonitorOptions): Promise<MonitorProcess> {
  const { child, output, done: exited } = spawnCli(['start-monitoring', ...(opts.args ?? [])], opts);
  const url = `http://${opts.host ?? '127.0.0.1'}:${opts.port}`;
  let exitedFirst: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then(
    (r) => (exitedFirst = r),
    () => (exitedFirst = { code: null, signal: null }),
  );
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  for (;;) {
    if (exitedFirst) {
      throw new Error(
        `start-monitoring exited (code ${exitedFirst.code}, signal ${exitedFirst.signal}) before ${url}/healthz answered\n${describeOutput(output())}`,
      );
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`start-monitoring did not answer ${url}/healthz within ${opts.startTimeoutMs ?? 15_000} ms\n${describeOutput(output())}`);
    }
    await Promise.race([new Promise((r) => setTimeout(r, 100)), exited]);
  }
  return {
    pid: child.pid!,
    url,
    output,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5_000): Promise<StoppedMonitor> {
      const started = performance.now();
      if (!exitedFirst) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
      const r = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (r === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`start-monitoring did not exit within ${timeoutMs} ms of ${signal}\n${describeOutput(output())}`);
      }
      return { ...r, ...output(), elapsedMs: performance.now() - started };
    },
  };
}

export interface HttpAnswer {
  status: number;
  body: string;
  headers: Headers;
}

/** GET with optional headers; the body as text. */
export async function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** Polls `check` every 100 ms until it returns true; throws after `timeoutMs` with `describe()`. */
export async function eventually(what: string, timeoutMs: number, check: () => Promise<boolean>, describe?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `\n${describe()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------
// Config files and fixtures
// ---------------------------------------------------------------------------

export interface DatabaseEntry {
  name?: string;
  type: string;
  priority: number;
  url: string;
  enabled?: boolean;
}

/** The shape of a config file, loose enough to write wrong values into. */
export interface ConfigDoc {
  debug?: boolean;
  logging?: { level: string; file?: string };
  server: { host: string; port: number; auth_token?: string };
  state: { path: string } & Record<string, unknown>;
  disaster_recovery: {
    enabled: boolean;
    databases: Record<string, DatabaseEntry>;
    backup: Record<string, unknown>;
    failover: Record<string, unknown>;
    monitoring: Record<string, unknown> & { alert_rules: Record<string, Record<string, unknown>> };
  };
}

/**
 * The shipped config/config.yaml as an object (SQLite primary, secondary1, disabled secondary2,
 * the guide's alert rules), serving on `port`, probing every second.
 */
export function sqliteConfig(port: number): ConfigDoc {
  return {
    debug: false,
    logging: { level: 'INFO' },
    server: { host: '127.0.0.1', port, auth_token: '${DR_AUTH_TOKEN:-}' },
    state: { path: 'data/dr-state.db' },
    disaster_recovery: {
      enabled: true,
      databases: {
        primary: { name: 'primary', type: 'primary', priority: 0, url: 'sqlite:///data/images_primary.db' },
        secondary1: { name: 'secondary1', type: 'secondary', priority: 1, url: 'sqlite:///data/images_secondary1.db' },
        secondary2: { name: 'secondary2', type: 'secondary', priority: 2, url: 'sqlite:///data/images_secondary2.db', enabled: false },
      },
      backup: { backup_dir: 'backups', enable_auto_backup: true, backup_interval: 3600, max_backups: 10, retention_days: 30, enable_compression: true },
      failover: {
        enable_auto_failover: true,
        health_check_interval: 30,
        detection_threshold: 3,
        max_retry_attempts: 3,
        retry_delay: 5,
        notification_enabled: true,
      },
      monitoring: {
        enable_health_monitoring: true,
        check_interval: 1,
        history_retention_hours: 24,
        alert_rules: {
          response_time_warning: { enabled: true, metric: 'response_time', operator: '>', threshold: 5000.0, severity: 'warning', duration: 60 },
          response_time_critical: { enabled: true, metric: 'response_time', operator: '>', threshold: 10000.0, severity: 'critical' },
          connection_count_high: { enabled: true, metric: 'connection_count', operator: '>', threshold: 100, severity: 'warning' },
          error_rate_critical: { enabled: true, metric: 'error_count', operator: '>', threshold: 10, severity: 'critical', duration: 300 },
        },
      },
    },
  };
}

/** A SQLite file as the crawler leaves it: WAL mode, the `images` table, `rows` rows. */
export function writeSqliteFixture(file: string, rows = 10): string {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(IMAGES_SCHEMA);
    const insert = db.prepare(
      'INSERT INTO images (url, source_page, file_path, file_size, width, height, format, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (let i = 1; i <= rows; i++) {
        insert.run(`https://example.com/img/${i}.jpg`, `https://example.com/page/${i}`, `images/${i}.jpg`, 1000 + i, 640, 480, 'jpeg', i.toString(16).padStart(64, '0'));
      }
    })();
  } finally {
    db.close();
  }
  return file;
}

/** A temp directory to run the CLI in, with helpers bound to it. */
export interface Sandbox {
  /** Real path (symlinks resolved), as the child's process.cwd() reports it. */
  readonly dir: string;
  /** Absolute path of `rel` inside the sandbox. */
  path(rel: string): string;
  /** Writes a config (object → YAML, or raw text); returns its absolute path. */
  writeConfig(doc: ConfigDoc | string, rel?: string): string;
  /** Writes a SQLite fixture at `rel`; returns its absolute path. */
  writeSqlite(rel: string, rows?: number): string;
  /** Creates the state store of the config at `rel` (default config.yaml) as start-monitoring run here would; returns its path. */
  createStateStore(rel?: string): string;
  /** Runs the CLI with the sandbox as cwd. */
  run(args: string[], opts?: Omit<CliOptions, 'cwd'>): Promise<CliResult>;
  /** Starts `start-monitoring` with the sandbox as cwd. */
  startMonitoring(opts: Omit<MonitorOptions, 'cwd'>): Promise<MonitorProcess>;
  remove(): void;
}

/** Creates a sandbox; with `t` it is removed when the test ends. */
export function createSandbox(t?: { after(fn: () => void): void }): Sandbox {
  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'dr-cli-')));
  const abs = (rel: string) => path.resolve(dir, rel);
  const sandbox: Sandbox = {
    dir,
    path: abs,
    writeConfig(doc, rel = 'config.yaml') {
      const file = abs(rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, typeof doc === 'string' ? doc : stringify(doc));
      return file;
    },
    writeSqlite: (rel, rows = 10) => writeSqliteFixture(abs(rel), rows),
    createStateStore: (rel = 'config.yaml') => createStateStore(loadConfig(abs(rel), {}, dir)),
    run: (args, opts = {}) => runCli(args, { ...opts, cwd: dir }),
    startMonitoring: (opts) => startMonitoring({ ...opts, cwd: dir }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  t?.after(() => sandbox.remove());
  return sandbox;
}

/**
 * The sandbox of the shipped example: config.yaml, the primary and secondary1 SQLite files,
 * and the state store a sidecar run in the sandbox would have created.
 */
export function createDemoSandbox(t: { after(fn: () => void): void } | undefined, port: number, rows = 25): { sandbox: Sandbox; config: string; doc: ConfigDoc } {
  const sandbox = createSandbox(t);
  const doc = sqliteConfig(port);
  const config = sandbox.writeConfig(doc);
  sandbox.writeSqlite('data/images_primary.db', rows);
  sandbox.writeSqlite('data/images_secondary1.db', rows);
  sandbox.createStateStore();
  return { sandbox, config, doc };
}

// ---------------------------------------------------------------------------
// Reading the CLI's output
// ---------------------------------------------------------------------------

/** Lines that look like a JavaScript stack frame. */
export function stackLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s+at\s/.test(l));
}

/** The `  - problem` lines of a configuration error on stderr. */
export function configProblems(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('  - '))
    .map((l) => l.slice(4));
}

/**
 * The table `status` prints, read by the header's column offsets: one record per row,
 * keyed by header (DATABASE, TYPE, STATUS, URL, ...).
 */
export function parseStatusTable(stdout: string): Array<Record<string, string>> {
  const lines = stdout.split('\n');
  const headerAt = lines.findIndex((l) => l.startsWith('DATABASE '));
  if (headerAt < 0) throw new Error(`no status table (no DATABASE header) in:\n${stdout}`);
  const header = lines[headerAt]!;
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], start: m.index }));
  const rows: Array<Record<string, string>> = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '') break;
    const row: Record<string, string> = {};
    columns.forEach((c, i) => {
      const end = i + 1 < columns.length ? columns[i + 1]!.start : undefined;
      row[c.name] = line.slice(c.start, end).trim();
    });
    rows.push(row);
  }
  return rows;
}

/** The JSON lines of a pino log; lines that are not JSON are returned as `{ raw }`. */
export function logLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { raw: l };
      }
    });
}
