/**
 * SQLite failover fixtures: a sandbox with a primary and its secondaries (real
 * files, WAL mode, the crawler's `images` table), the config that names them
 * (for the in-process sidecar and for the real CLI), a writer that inserts
 * numbered rows through DisasterRecoveryManager.withSession and remembers
 * which ones were acknowledged, and ways to make a database file unreadable.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../../src/config/load.js';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { DisasterRecoveryManager } from '../../src/manager.js';
import { DisasterRecoveryService } from '../../src/service.js';
import type { FailoverRecord } from '../../src/state/store.js';
import { createSandbox, REPO_ROOT, sqliteConfig, type ConfigDoc, type DatabaseEntry, type Sandbox } from './cli.js';
import { createStateStore } from './state-store.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface ClusterOptions {
  /** Databases after `primary` (default ['secondary1']). */
  secondaries?: string[];
  /** Databases configured with `enabled: false` (their files are made all the same). */
  disabled?: string[];
  /** Rows each file starts with (default 20, ids 1..rows). */
  rows?: number;
  /** Merged over the failover section (fast defaults below). */
  failover?: Record<string, unknown>;
  monitoring?: Record<string, unknown>;
  notifications?: Record<string, unknown>;
  /** The drill section (e.g. `{ schedule: '* * * * * *' }`). */
  drill?: Record<string, unknown>;
  /** Merged over the state section (e.g. `{ backend: 'etcd', etcd: {...} }`). */
  state?: Record<string, unknown>;
}

/** Fast defaults: probe the primary every 0.3 s, fail over after 3 failures, copy every second. */
export const FAST_FAILOVER = {
  enable_auto_failover: true,
  health_check_interval: 0.3,
  detection_threshold: 3,
  max_retry_attempts: 2,
  retry_delay: 1,
  notification_enabled: true,
  sync_interval: 1,
  cooldown: 60,
};

/** Cleanup steps run newest first (node:test runs `after` hooks in the order they were added). */
export interface Defer {
  (what: () => unknown): void;
}

export function deferrer(t: { after(fn: () => Promise<void>): void }): Defer {
  const steps: Array<() => unknown> = [];
  t.after(async () => {
    for (const step of steps.reverse()) await step();
  });
  return (step) => void steps.push(step);
}

export interface SqliteCluster {
  sandbox: Sandbox;
  /** Registers a cleanup step; they run newest first, the sandbox's removal last. */
  defer: Defer;
  /** The config file the CLI reads (relative URLs, resolved against the sandbox). */
  configPath: string;
  doc: ConfigDoc;
  /** Absolute path of each database's file. */
  file(name: string): string;
  /** The config as the library and the sidecar load it (cwd = the sandbox). */
  load(): Config;
  /** Runs the real CLI in the sandbox with `--config`. */
  cli(...args: string[]): ReturnType<Sandbox['run']>;
}

export function sqliteCluster(t: { after(fn: () => Promise<void>): void }, options: ClusterOptions = {}): SqliteCluster {
  const defer = deferrer(t);
  const sandbox = createSandbox();
  defer(() => sandbox.remove());
  const doc = sqliteConfig(0);
  const names = ['primary', ...(options.secondaries ?? ['secondary1'])];
  const databases: Record<string, DatabaseEntry> = {};
  names.forEach((name, i) => {
    databases[name] = { name, type: i === 0 ? 'primary' : 'secondary', priority: i, url: `sqlite:///data/${name}.db` };
    if (options.disabled?.includes(name)) databases[name].enabled = false;
    seedImages(sandbox.path(`data/${name}.db`), options.rows ?? 20);
  });
  doc.server.auth_token = 'test-token-0123456789';
  doc.disaster_recovery.databases = databases;
  doc.disaster_recovery.backup = { backup_dir: 'backups', enable_auto_backup: false };
  doc.disaster_recovery.failover = { ...FAST_FAILOVER, ...options.failover };
  // No alert rules: the shipped 5 s / 10 s response_time rules would refuse a probe_timeout of 1 s (no room above them).
  doc.disaster_recovery.monitoring = { ...doc.disaster_recovery.monitoring, check_interval: 0.5, probe_timeout: 1, alert_rules: {}, ...options.monitoring };
  if (options.notifications) (doc.disaster_recovery as Record<string, unknown>).notifications = options.notifications;
  if (options.drill) (doc.disaster_recovery as Record<string, unknown>).drill = options.drill;
  if (options.state) doc.state = { ...doc.state, ...options.state };
  const configPath = sandbox.writeConfig(doc);
  // The store a sidecar run in the sandbox would have created: CLI commands and the library refuse a missing one.
  createStateStore(loadConfig(configPath, {}, sandbox.dir));
  return {
    sandbox,
    defer,
    configPath,
    doc,
    file: (name) => sandbox.path(`data/${name}.db`),
    load: () => loadConfig(configPath, {}, sandbox.dir),
    cli: (...args) => sandbox.run(['--config', configPath, ...args], { timeoutMs: 30_000 }),
  };
}

/** A WAL-mode file with the `images` table and rows with ids 1..rows. */
export function seedImages(file: string, rows: number): void {
  fs.mkdirSync(file.replace(/\/[^/]*$/, ''), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE IF NOT EXISTS images (
      id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL UNIQUE, source_page TEXT, file_path TEXT,
      file_size INTEGER, width INTEGER, height INTEGER, format TEXT, sha256 TEXT,
      status TEXT NOT NULL DEFAULT 'downloaded', created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`);
    db.transaction(() => {
      for (let id = 1; id <= rows; id++) insertImage(db, id);
    })();
  } finally {
    db.close();
  }
}

/** Pads a database to about `mb` MB with rows of a side table (the writer's ids stay small). */
export function padDatabase(file: string, mb: number): void {
  const db = new Database(file);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS padding (id INTEGER PRIMARY KEY, blob TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO padding (blob) VALUES (?)');
    const row = 'x'.repeat(1000);
    db.transaction(() => {
      for (let i = 0; i < mb * 1000; i++) insert.run(row);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** The row the writer inserts for `id`; a second run of the same id changes nothing. */
export function insertImage(db: Database.Database, id: number): void {
  db.prepare(
    `INSERT INTO images (id, url, file_path, file_size, width, height, format, sha256) VALUES (?, ?, ?, ?, 640, 480, 'jpeg', ?)
     ON CONFLICT DO NOTHING`,
  ).run(id, `https://example.com/img/${id}.jpg`, `images/${id}.jpg`, 1000 + id, id.toString(16).padStart(64, '0'));
}

/** Every image id in a database file, read through a connection of its own. */
export function imageIds(file: string): Set<number> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return new Set((db.prepare('SELECT id FROM images').all() as Array<{ id: number }>).map((r) => r.id));
  } finally {
    db.close();
  }
}

/** The file, its WAL and its shared memory moved aside (a lost disk); `restore()` puts them back. */
export function moveAway(file: string): { restore(): void } {
  const moved: string[] = [];
  for (const side of ['', '-wal', '-shm']) {
    if (!fs.existsSync(file + side)) continue;
    fs.renameSync(file + side, `${file}${side}.lost`);
    moved.push(side);
  }
  return {
    restore() {
      for (const side of moved.splice(0)) fs.renameSync(`${file}${side}.lost`, file + side);
    },
  };
}

/**
 * Overwrites the first 100 bytes (the SQLite header) with garbage: every new
 * connection gets SQLITE_NOTADB. The WAL is checkpointed first so no later
 * checkpoint writes page 1 back; `restore()` writes the original bytes back.
 */
export function corruptHeader(file: string): { restore(): void } {
  const db = new Database(file);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  const fd = fs.openSync(file, 'r+');
  const original = Buffer.alloc(100);
  try {
    fs.readSync(fd, original, 0, 100, 0);
    fs.writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return {
    restore() {
      const again = fs.openSync(file, 'r+');
      try {
        fs.writeSync(again, original, 0, 100, 0);
        fs.fsyncSync(again);
      } finally {
        fs.closeSync(again);
      }
    },
  };
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger that keeps its lines in memory (for assertions and failure messages). */
export function memoryLogger(level = 'debug'): { log: Logger; lines: LogLine[]; tail(n?: number): string } {
  const lines: LogLine[] = [];
  const log = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines, tail: (n = 40) => lines.slice(-n).map((l) => `${l.level} ${l.msg}`).join('\n') };
}

export interface Sidecar {
  service: DisasterRecoveryService;
  http: RunningServer;
  logs: ReturnType<typeof memoryLogger>;
  stop(): Promise<void>;
}

/** The sidecar in this process, as start-monitoring runs it: service.start() and its HTTP routes on a free port. */
export async function startSidecar(config: Config): Promise<Sidecar> {
  const logs = memoryLogger();
  const service = await DisasterRecoveryService.open(config, logs.log, 'create');
  await service.start();
  const http = await listen(createApp(service, logs.log), '127.0.0.1', 0);
  let stopped = false;
  return {
    service,
    http,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await http.close();
      await service.stop();
    },
  };
}

export interface Ack {
  /** Epoch ms when withSession resolved (after the commit). */
  at: number;
  database: string;
  epoch: number;
}

/**
 * The application: inserts rows with ids 1, 2, 3, ... (after the seeded ones)
 * one transaction each through withSession, and records every acknowledged id
 * with where and when it was acknowledged, and every error.
 */
export class Writer {
  readonly acked = new Map<number, Ack>();
  readonly errors: Array<{ id: number; at: number; error: string }> = [];
  private next: number;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly manager: DisasterRecoveryManager,
    firstId: number,
    private readonly gapMs = 3,
  ) {
    this.next = firstId;
  }

  static async open(config: Config, firstId: number, gapMs = 3): Promise<Writer> {
    const logs = memoryLogger('warn');
    return new Writer(await DisasterRecoveryManager.open({ config, logger: logs.log }), firstId, gapMs);
  }

  start(): this {
    this.loop = this.run();
    return this;
  }

  /** Stops after the transaction under way; closes the manager. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.loop;
    await this.manager.stop();
  }

  /** Acknowledged ids, in order. */
  ids(): number[] {
    return [...this.acked.keys()];
  }

  ackedOn(database: string): number[] {
    return [...this.acked].filter(([, a]) => a.database === database).map(([id]) => id);
  }

  /** Resolves once `count` more rows have been acknowledged on `database`. */
  async waitForAcks(database: string, count: number, timeoutMs = 20_000): Promise<void> {
    const target = this.ackedOn(database).length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.ackedOn(database).length < target) {
      if (Date.now() > deadline) {
        throw new Error(
          `writer: ${this.ackedOn(database).length} of ${target} rows acknowledged on ${database} after ${timeoutMs} ms; ` +
            `last errors: ${JSON.stringify(this.errors.slice(-3))}`,
        );
      }
      await sleep(20);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const id = this.next++;
      try {
        const where = await this.manager.withSession((session) => {
          if (session.engine !== 'sqlite') throw new Error(`expected SQLite, got ${session.engine}`);
          insertImage(session.db, id);
          return { database: session.database, epoch: session.epoch };
        });
        this.acked.set(id, { at: Date.now(), ...where });
      } catch (error) {
        this.errors.push({ id, at: Date.now(), error: (error as Error).message });
      }
      await sleep(this.gapMs);
    }
  }
}

/** The ids acknowledged but missing from `present`. */
export function lostIds(acked: Iterable<number>, present: Set<number>): number[] {
  return [...acked].filter((id) => !present.has(id));
}

/** Waits until the history holds a record matching `match`; returns it. */
export async function waitForHistory(
  service: DisasterRecoveryService,
  match: (r: FailoverRecord) => boolean,
  timeoutMs: number,
  describe: () => string = () => '',
): Promise<FailoverRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await service.history(100)).find(match);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(`no matching failover record after ${timeoutMs} ms; history: ${JSON.stringify(await service.history(10), null, 1)}\n${describe()}`);
    }
    await sleep(25);
  }
}

/** A metric sample from the exposition text, e.g. sample(text, 'dr_failovers_total{trigger="auto",result="success"}'). */
export function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

export interface ChildWriter {
  /** Acknowledged id -> epoch ms of its commit's return. */
  acks: Map<number, number>;
  /** What the child wrote on stderr (errors other than a busy database end it). */
  errors(): string;
  stop(): Promise<void>;
}

/**
 * The application in a process of its own, writing straight into `file` (it keeps the file open:
 * deleting the file under it does not stop it): a row every few ms with ids `firstId`, +1, ...,
 * printing "id ackedAtMs" per commit. With `pairs`, each transaction inserts two rows (id, id+1)
 * and acknowledges both: a reader must never see one without the other.
 */
export function childWriter(file: string, firstId: number, options: { pairs?: boolean; gapMs?: number; rowBytes?: number } = {}): ChildWriter {
  const script = `
    import Database from 'better-sqlite3';
    const [file, first, pairs, gap, rowBytes] = process.argv.slice(1);
    const db = new Database(file, { timeout: 5000 });
    const padding = 'x'.repeat(Number(rowBytes));
    const insert = db.prepare("INSERT INTO images (id, url, source_page) VALUES (?, ?, '" + padding + "')");
    const step = pairs === '1' ? 2 : 1;
    const write = db.transaction((id) => {
      for (let i = 0; i < step; i++) insert.run(id + i, 'https://example.com/img/' + (id + i) + '.jpg');
    });
    let id = Number(first), stop = false;
    process.stdin.on('close', () => (stop = true)).resume();
    while (!stop) {
      write(id);
      const at = Date.now();
      for (let i = 0; i < step; i++) process.stdout.write((id + i) + ' ' + at + '\\n');
      id += step;
      await new Promise((r) => setTimeout(r, Number(gap)));
    }
    db.close();`;
  const args = ['--input-type=module', '-e', script, file, String(firstId), options.pairs ? '1' : '0', String(options.gapMs ?? 3), String(options.rowBytes ?? 0)];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const acks = new Map<number, number>();
  let buffered = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const lines = (buffered + d).split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [id, at] = line.split(' ').map(Number);
      acks.set(id!, at!);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    acks,
    errors: () => stderr,
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

/** Every image id and the integrity check of a file, through a connection of its own (read-write: it may play back a hot journal). */
export function imagesAndIntegrity(file: string): { ids: number[]; integrity: string } {
  const db = new Database(file, { fileMustExist: true, timeout: 5000 });
  try {
    return {
      ids: db.prepare('SELECT id FROM images ORDER BY id').pluck().all() as number[],
      integrity: db.pragma('integrity_check', { simple: true }) as string,
    };
  } finally {
    db.close();
  }
}
