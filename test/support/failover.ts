/**
 * Helpers for the failover tests against real PostgreSQL servers: a primary with
 * streaming standbys holding an `items` table, a config for them, a writer that
 * inserts numbered rows through DisasterRecoveryManager.withSession and records
 * every acknowledged id, and checks of what each server holds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config/load.js';
import { createLogger, type Logger } from '../../src/log.js';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';
import { DisasterRecoveryManager } from '../../src/manager.js';
import { DisasterRecoveryService } from '../../src/service.js';
import type { FailoverRecord } from '../../src/state/store.js';
import { startPostgres, startStandby, type PgServer } from './postgres.js';
import { createStateStore } from './state-store.js';

export const APP_DB = 'app';
export const TOKEN = 'failover-test-token-4f1c';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

export interface PgCluster {
  primary: PgServer;
  standbys: PgServer[];
  /** Every server, primary first. */
  all(): PgServer[];
  destroy(): Promise<void>;
}

/**
 * A primary with the `app` database and its `items` table, and `standbys` streaming
 * standbys named standby1, standby2, ... (cluster_name, hence the application_name
 * they stream under, which synchronous_standby_names refers to). `synchronous` sets
 * synchronous_standby_names on the primary; standbys inherit the primary's settings,
 * so a promoted standby keeps the same rule for its own standbys.
 */
export async function startPgCluster(opts: { standbys: number; synchronous?: string; settings?: Record<string, string> }): Promise<PgCluster> {
  const servers: PgServer[] = [];
  const cluster: PgCluster = {
    get primary() {
      return servers[0]!;
    },
    get standbys() {
      return servers.slice(1);
    },
    all: () => [...servers],
    destroy: async () => {
      for (const s of [...servers].reverse()) await s.destroy().catch(() => undefined);
    },
  };
  try {
    // The primary starts without the synchronous rule: with it, creating the schema would wait for a standby.
    const primary = await startPostgres({ settings: { ...opts.settings, cluster_name: 'primary' } });
    servers.push(primary);
    await primary.createDatabase(APP_DB);
    await primary.query('CREATE TABLE items (id integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())', [], APP_DB);
    if (opts.synchronous) {
      await primary.query(`ALTER SYSTEM SET synchronous_standby_names = '${opts.synchronous.replace(/'/g, "''")}'`);
      await primary.query('SELECT pg_reload_conf()');
    }
    for (let i = 1; i <= opts.standbys; i++) {
      // pg_basebackup copies postgresql.auto.conf, so the standby carries the synchronous rule too.
      servers.push(await startStandby(primary, { settings: { ...opts.settings, cluster_name: `standby${i}` } }));
    }
    return cluster;
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
}

/** The cluster as config entries: `primary` (priority 0), then `standbyN` with priority N, on the app database. */
export function clusterDatabases(cluster: PgCluster): DbEntry[] {
  return cluster.all().map((server, i) =>
    i === 0
      ? { name: 'primary', type: 'primary', priority: 0, url: server.url({ database: APP_DB }) }
      : { name: `standby${i}`, type: 'secondary', priority: i, url: server.url({ database: APP_DB }) },
  );
}

export interface InProcessSidecar {
  sidecar: DisasterRecoveryService;
  http: RunningServer;
  /** The application: its own service object, sharing only the state store with the sidecar. */
  manager: DisasterRecoveryManager;
  stop(): Promise<void>;
}

/** The sidecar running in this process with its HTTP API, and an application's manager beside it; all databases up. */
export async function startInProcessSidecar(config: Config, log: Logger): Promise<InProcessSidecar> {
  const sidecar = await DisasterRecoveryService.open(config, log, 'create');
  const http = await listen(createApp(sidecar, log), '127.0.0.1', 0);
  const manager = await DisasterRecoveryManager.open({ config, logger: silentLogger(), failoverWaitMs: 20_000 });
  await sidecar.start();
  await allUp(sidecar);
  return {
    sidecar,
    http,
    manager,
    stop: async () => {
      await http.close();
      await manager.stop();
      await sidecar.stop();
    },
  };
}

/** pg_is_in_recovery() of a server. */
export async function inRecovery(server: PgServer): Promise<boolean> {
  const [row] = await server.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  return row!.r;
}

/** The port a standby's WAL receiver streams from, and its status; undefined when it has none. */
export async function walReceiver(server: PgServer): Promise<{ status: string; port: number } | undefined> {
  const [row] = await server.query<{ status: string; sender_port: number }>('SELECT status, sender_port FROM pg_stat_wal_receiver');
  return row ? { status: row.status, port: row.sender_port } : undefined;
}

/** application_name → sync_state of the standbys streaming from a server. */
export async function replicationStates(server: PgServer): Promise<Record<string, string>> {
  const rows = await server.query<{ application_name: string; sync_state: string }>('SELECT application_name, sync_state FROM pg_stat_replication');
  return Object.fromEntries(rows.map((r) => [r.application_name, r.sync_state]));
}

/** The ids among `ids` that `server` does not hold. */
export async function missingIds(server: PgServer, ids: readonly number[]): Promise<number[]> {
  const rows = await server.query<{ id: number }>('SELECT id FROM items WHERE id = ANY($1::int[])', [ids], APP_DB);
  const present = new Set(rows.map((r) => r.id));
  return ids.filter((id) => !present.has(id));
}

export async function maxId(server: PgServer): Promise<number> {
  const [row] = await server.query<{ m: number | null }>('SELECT max(id) AS m FROM items', [], APP_DB);
  return row!.m ?? 0;
}

/** Tries an INSERT into `database` on `server` (a new superuser session); the SQLSTATE it failed with, or 'ok'. */
export async function tryInsert(server: PgServer, id: number, database = APP_DB): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      await server.query('INSERT INTO items (id) VALUES ($1)', [id], database);
      return 'ok';
    } catch (error) {
      const code = (error as { code?: string }).code ?? String(error);
      // A fence under way ends the sessions of its database, this one too (57P01): what the next session finds is the answer.
      if (code !== '57P01' || attempt >= 5) return code;
    }
  }
}

/** Whether a new session of `database` on `server` is read-only by default (fenced). */
export async function readOnlyDefault(server: PgServer, database = APP_DB): Promise<boolean> {
  const [row] = await server.query<{ default_transaction_read_only: string }>('SHOW default_transaction_read_only', [], database);
  return row!.default_transaction_read_only === 'on';
}

// ---------------------------------------------------------------------------
// Config, logs, temp folders
// ---------------------------------------------------------------------------

export interface DbEntry {
  name: string;
  type: 'primary' | 'secondary';
  priority: number;
  url: string;
  enabled?: boolean;
}

export interface FailoverConfigOptions {
  dir: string;
  databases: DbEntry[];
  /** server.port (0: the tests that listen themselves pick a free one). */
  port?: number;
  healthCheckInterval?: number;
  checkInterval?: number;
  threshold?: number;
  probeTimeout?: number;
  cooldown?: number;
  autoFailover?: boolean;
  retryDelay?: number;
  maxLag?: number;
  /** Default config.yaml. */
  fileName?: string;
  /** The `state:` section as YAML flow text (e.g. an etcd backend); default a SQLite store in `dir`, created here. */
  state?: string;
  /** Default `<dir>/backups`. */
  backupDir?: string;
  /** failover.pre_promote, a shell command. */
  prePromote?: string;
}

/**
 * Writes `config.yaml` (or `fileName`) into `dir`; with the default SQLite state, creates the store beside it
 * (as start-monitoring would). Returns its path and the parsed config.
 */
export function writeFailoverConfig(o: FailoverConfigOptions): { file: string; config: Config; yaml: string } {
  const dbs = o.databases
    .map((d) => `    ${d.name}: { type: ${d.type}, priority: ${d.priority}, url: "${d.url}"${d.enabled === false ? ', enabled: false' : ''} }`)
    .join('\n');
  const yaml = `
logging: { level: info }
server: { host: 127.0.0.1, port: ${o.port ?? 0}, auth_token: "${TOKEN}" }
state: ${o.state ?? `{ path: "${path.join(o.dir, 'dr-state.db')}" }`}
disaster_recovery:
  enabled: true
  databases:
${dbs}
  backup: { backup_dir: "${o.backupDir ?? path.join(o.dir, 'backups')}", enable_auto_backup: false }
  failover:
    enable_auto_failover: ${o.autoFailover ?? true}
    health_check_interval: ${o.healthCheckInterval ?? 0.5}
    detection_threshold: ${o.threshold ?? 3}
    max_retry_attempts: 3
    retry_delay: ${o.retryDelay ?? 1}
    notification_enabled: false
    cooldown: ${o.cooldown ?? 300}
${o.maxLag !== undefined ? `    max_lag_on_failover: ${o.maxLag}\n` : ''}${o.prePromote !== undefined ? `    pre_promote: ${JSON.stringify(o.prePromote)}\n` : ''}  monitoring:
    enable_health_monitoring: true
    check_interval: ${o.checkInterval ?? 1}
    probe_timeout: ${o.probeTimeout ?? 1}
    alert_rules: {}
`;
  const file = path.join(o.dir, o.fileName ?? 'config.yaml');
  fs.writeFileSync(file, yaml);
  const config = parseConfig(yaml, file, {}, o.dir);
  if (o.state === undefined) createStateStore(config);
  return { file, yaml, config };
}

export function tempFolder(prefix = 'dr-failover-'): { dir: string; cleanup(): void } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A logger that keeps its JSON lines in memory (printed when a test fails). */
export function memoryLogger(level = 'info'): { log: Logger; lines(): Array<Record<string, unknown>>; text(): string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level, destination: sink });
  const text = () => chunks.join('');
  return {
    log,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/** Polls `check` every `everyMs` until it returns a value that is not undefined/false; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false> | T | undefined | false, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

/** Waits until every enabled database has been probed up by `service`'s monitor. */
export function allUp(service: DisasterRecoveryService, timeoutMs = 10_000): Promise<true> {
  return waitFor('every database probed up', timeoutMs, () =>
    service.config.databases.filter((d) => d.enabled).every((d) => service.monitor.health(d.name)?.status === 'up'),
  );
}

/** The first successful history entry newer than `afterId`. */
export function nextSuccess(service: DisasterRecoveryService, afterId: number, timeoutMs: number): Promise<FailoverRecord> {
  return waitFor(`a successful failover after history #${afterId}`, timeoutMs, async () =>
    (await service.history(20)).find((r) => (r.id ?? 0) > afterId && r.result === 'success'),
  );
}

// ---------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------

export interface Ack {
  id: number;
  /** Epoch ms when withSession returned. */
  at: number;
  /** The database the row was written to (the session's). */
  database: string;
  epoch: number;
}

/**
 * An application writing numbered rows, one transaction each, through
 * `manager.withSession`: the id is acknowledged only when withSession returned.
 * A failed id is tried again (ON CONFLICT DO NOTHING makes a retry safe) up to
 * `attempts` times, then given up (not acknowledged). Bounded by `maxRows`.
 */
export class NumberedWriter {
  readonly acks: Ack[] = [];
  readonly failures: Array<{ id: number; at: number; error: string }> = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  private next = 1;

  constructor(
    private readonly manager: DisasterRecoveryManager,
    private readonly opts: { paceMs?: number; attempts?: number; maxRows?: number; firstId?: number } = {},
  ) {
    this.next = opts.firstId ?? 1;
  }

  start(): this {
    this.loop = this.run();
    return this;
  }

  /** Stops after the transaction under way; rejects if that takes longer than `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.stopped = true;
    if (!this.loop) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the writer did not stop within ${timeoutMs} ms (a transaction hangs)`)), timeoutMs);
    });
    try {
      await Promise.race([this.loop, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  ids(): number[] {
    return this.acks.map((a) => a.id);
  }

  on(database: string): Ack[] {
    return this.acks.filter((a) => a.database === database);
  }

  /** Waits until `count` more rows than now (or than `from`) are acknowledged, optionally on one database. */
  async waitForAcks(count: number, timeoutMs: number, database?: string): Promise<void> {
    const base = database ? this.on(database).length : this.acks.length;
    await waitFor(`${count} more acknowledged rows${database ? ` on ${database}` : ''}`, timeoutMs, () =>
      (database ? this.on(database).length : this.acks.length) >= base + count,
    );
  }

  /** The longest time between two acknowledgements: the outage the application saw. */
  longestGap(): { ms: number; before: Ack | undefined; after: Ack | undefined } {
    let best = { ms: 0, before: undefined as Ack | undefined, after: undefined as Ack | undefined };
    for (let i = 1; i < this.acks.length; i++) {
      const ms = this.acks[i]!.at - this.acks[i - 1]!.at;
      if (ms > best.ms) best = { ms, before: this.acks[i - 1], after: this.acks[i] };
    }
    return best;
  }

  private async run(): Promise<void> {
    const attempts = this.opts.attempts ?? 3;
    const maxRows = this.opts.maxRows ?? 20_000;
    while (!this.stopped && this.next < (this.opts.firstId ?? 1) + maxRows) {
      const id = this.next++;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          const ack = await this.manager.withSession(async (session) => {
            if (session.engine !== 'postgresql') throw new Error('the writer is for PostgreSQL');
            await session.client.query('INSERT INTO items (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [id]);
            return { database: session.database, epoch: session.epoch };
          });
          this.acks.push({ id, at: Date.now(), ...ack });
          break;
        } catch (error) {
          this.failures.push({ id, at: Date.now(), error: (error as Error).message });
          if (this.stopped) break;
          await sleep(100);
        }
      }
      await sleep(this.opts.paceMs ?? 5);
    }
  }
}

/** One line for the bench-like figures a test measured. */
export function report(label: string, figures: Record<string, unknown>): void {
  console.log(`[failover-figures] ${label}: ${JSON.stringify(figures)}`);
}
