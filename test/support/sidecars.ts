/**
 * Several sidecars sharing one cluster state, as a user runs them: N real
 * `start-monitoring` processes (the CLI, each with its own server port and
 * member name, the same databases and settings), a real etcd cluster, a real
 * PostgreSQL primary with streaming standbys (standby1 synchronous, standby2 its
 * potential replacement), and an application writing numbered rows through the
 * library's `withSession` (test/support/failover.ts's NumberedWriter).
 *
 * Levers: kill -9, SIGSTOP and SIGCONT of a sidecar; optionally a TCP proxy per
 * sidecar and database (a partition of one sidecar from one database); the etcd
 * harness's own levers for its members. Readings: which sidecar says it leads
 * (`dr_sidecar_is_leader` on /metrics), `/primary` of each, the history through the CLI.
 *
 * Nothing outlives the test: cleanup in `t.after`, on exit, and a detached
 * watchdog that kills the sidecars and the postmasters once the test process is
 * gone however it died (SIGKILL included, when no hook runs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../../src/config/load.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { silentLogger } from '../../src/log.js';
import { DisasterRecoveryManager } from '../../src/manager.js';
import { runCli, startMonitoring, type CliResult, type MonitorProcess } from './cli.js';
import { startEtcdCluster, type EtcdCluster } from './etcd.js';
import { APP_DB, NumberedWriter, startPgCluster, tempFolder, TOKEN, writeFailoverConfig, type DbEntry, type PgCluster } from './failover.js';
import { freePort, type PgServer } from './postgres.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export { TOKEN };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface SidecarClusterOptions {
  /** Sidecar processes (default 3). */
  sidecars?: number;
  /** Default etcd; `sqlite` (one sidecar only) is today's single sidecar, for comparison. */
  backend?: 'etcd' | 'sqlite';
  /** state.etcd.ttl in seconds (default 3). */
  ttl?: number;
  /** health_check_interval and check_interval in seconds (default 1). */
  interval?: number;
  /** detection_threshold (default 3). */
  threshold?: number;
  /** Streaming standbys (default 2): standby1 synchronous, standby2 the next in line. */
  standbys?: number;
  /** Each sidecar reaches each database through a TCP proxy of its own, which the test can cut. */
  proxied?: boolean;
  /** An etcd cluster shared with other tests (each cluster of sidecars has its own prefix); default: one of its own. */
  etcd?: EtcdCluster;
  autoFailover?: boolean;
  /** failover.pre_promote of every sidecar (a shell command run by the leader before it promotes). */
  prePromote?: string;
}

export interface PrimaryAnswer {
  sidecar: string;
  status: number;
  /** `name` of the body, or undefined when there was no answer. */
  name: string | undefined;
  body: string;
}

export interface SidecarProcess {
  /** The member name (state.etcd.member): a, b, c, ... */
  readonly name: string;
  readonly url: string;
  readonly configFile: string;
  /** undefined once killed. */
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly frozen: boolean;
  /** kill -9; resolves once the process is gone. */
  kill9(): Promise<void>;
  /** kill -STOP: a frozen host or a very long pause. */
  freeze(): void;
  /** kill -CONT. */
  thaw(): void;
  /** Its /metrics exposition; undefined when it does not answer within 3 s. */
  metrics(): Promise<string | undefined>;
  /** dr_sidecar_is_leader of its /metrics: undefined when it does not answer (within 3 s) or has no such series. */
  isLeader(): Promise<boolean | undefined>;
  /** GET /primary. */
  primary(): Promise<PrimaryAnswer>;
  /** An HTTP request to its API with the bearer token. */
  api(method: 'GET' | 'POST', route: string, body?: unknown, timeoutMs?: number): Promise<{ status: number; body: string }>;
  /** The last lines it logged. */
  logTail(lines?: number): string;
}

export interface SidecarCluster {
  readonly dir: string;
  /** state.etcd.prefix of this cluster. */
  readonly prefix: string;
  /** undefined with the SQLite backend. */
  readonly etcd: EtcdCluster | undefined;
  readonly pg: PgCluster;
  readonly sidecars: readonly SidecarProcess[];
  /** The application's config: direct database URLs, the same state. */
  readonly writerConfig: Config;
  /** primary, standby1, standby2, ... */
  server(database: string): PgServer;
  /** The proxy between a sidecar and a database (`proxied` clusters only). */
  proxy(sidecar: SidecarProcess, database: string): TcpProxy;
  /** The running, unfrozen sidecars saying they lead. */
  leaders(): Promise<SidecarProcess[]>;
  /** Waits until exactly one running, unfrozen sidecar says it leads, and returns it. */
  leader(timeoutMs?: number, except?: SidecarProcess): Promise<SidecarProcess>;
  /** GET /primary of every running, unfrozen sidecar. */
  primaries(): Promise<PrimaryAnswer[]>;
  /** Waits until every running, unfrozen sidecar's /primary answers `status` (and, for 200, names `name`). */
  waitPrimaries(status: 200 | 503, name: string | undefined, timeoutMs: number): Promise<PrimaryAnswer[]>;
  /** `disaster-recovery history --json` with the application's config (or `sidecar`'s). */
  history(sidecar?: SidecarProcess): Promise<FailoverRecordJson[]>;
  /** Waits until the history has a record that `match` accepts. */
  waitHistory(what: string, timeoutMs: number, match: (r: FailoverRecordJson) => boolean): Promise<FailoverRecordJson>;
  /**
   * The real CLI with `sidecar`'s config, as an operator on that host runs it, or by default with
   * the application's (no member name of a sidecar: a command does not speak for a running sidecar).
   */
  cli(args: string[], sidecar?: SidecarProcess): Promise<CliResult>;
  /** The application's library (DisasterRecoveryManager on writerConfig), stopped at the end of the test. */
  openApplication(): Promise<DisasterRecoveryManager>;
  /** An application writing numbered rows through withSession, stopped at the end of the test. */
  startWriter(opts?: { paceMs?: number }): Promise<NumberedWriter>;
  /** Every sidecar's log tail and the history, for a failure message. */
  describe(): Promise<string>;
  destroy(): Promise<void>;
}

/** dr_sidecar_is_leader in an exposition: 1 → true, 0 → false, absent → undefined. */
export function leaderSample(exposition: string): boolean | undefined {
  const line = exposition.split('\n').find((l) => /^dr_sidecar_is_leader(\{[^}]*\})? /.test(l));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1)) === 1;
}

async function request(url: string, init: RequestInit, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

class Sidecar implements SidecarProcess {
  process: MonitorProcess | undefined;
  frozen = false;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly configFile: string,
    private readonly cwd: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  async start(): Promise<void> {
    this.process = await startMonitoring({ cwd: this.cwd, port: this.port, args: ['--config', this.configFile], startTimeoutMs: 30_000 });
  }

  async kill9(): Promise<void> {
    const p = this.process;
    if (!p) return;
    process.kill(p.pid, 'SIGKILL');
    this.frozen = false;
    await p.stop('SIGKILL', 10_000).catch(() => undefined);
    this.lastOutput = p.output().stdout + p.output().stderr;
    this.process = undefined;
  }

  private lastOutput = '';

  freeze(): void {
    if (!this.process) throw new Error(`sidecar ${this.name} is not running`);
    process.kill(this.process.pid, 'SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    if (this.process) process.kill(this.process.pid, 'SIGCONT');
    this.frozen = false;
  }

  async metrics(): Promise<string | undefined> {
    if (!this.process || this.frozen) return undefined;
    try {
      const r = await request(`${this.url}/metrics`, {}, 3_000);
      return r.status === 200 ? r.body : undefined;
    } catch {
      return undefined;
    }
  }

  async isLeader(): Promise<boolean | undefined> {
    const body = await this.metrics();
    return body === undefined ? undefined : leaderSample(body);
  }

  async primary(): Promise<PrimaryAnswer> {
    try {
      const r = await request(`${this.url}/primary`, {}, 5_000);
      let name: string | undefined;
      try {
        name = (JSON.parse(r.body) as { name?: string | null }).name ?? undefined;
      } catch { /* not JSON */ }
      return { sidecar: this.name, status: r.status, name, body: r.body };
    } catch (error) {
      return { sidecar: this.name, status: 0, name: undefined, body: String(error) };
    }
  }

  api(method: 'GET' | 'POST', route: string, body?: unknown, timeoutMs = 60_000): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return request(`${this.url}${route}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }, timeoutMs);
  }

  logTail(lines = 15): string {
    const text = this.process ? this.process.output().stdout + this.process.output().stderr : this.lastOutput;
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  async stop(): Promise<void> {
    const p = this.process;
    if (!p) return;
    this.thaw();
    await p.stop('SIGTERM', 10_000).catch(() => p.stop('SIGKILL', 5_000).catch(() => undefined));
    this.process = undefined;
  }
}

/** The sidecars and postmasters of every live cluster, for the watchdog. */
const live = new Set<Cluster>();

/** One shell outside our process group that kills what is left once this process is gone, however it died. */
let watchdog: ChildProcess | undefined;
function rearmWatchdog(): void {
  watchdog?.kill('SIGKILL');
  watchdog = undefined;
  const pids: number[] = [];
  const dirs: string[] = [];
  for (const c of live) {
    pids.push(...c.sidecarList.map((s) => s.pid).filter((p): p is number => p !== undefined));
    for (const server of c.pg.all()) {
      dirs.push(path.dirname(server.dataDir));
      try {
        pids.push(server.postmasterPid());
      } catch { /* not running */ }
    }
    dirs.push(c.dir);
  }
  if (pids.length === 0) return;
  const script =
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
    `for p in ${pids.join(' ')}; do kill -CONT $p; kill -KILL $p; done 2>/dev/null; sleep 2; rm -rf ${dirs.map((d) => `'${d}'`).join(' ')}`;
  watchdog = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watchdog.unref();
}

class Cluster implements SidecarCluster {
  readonly sidecarList: Sidecar[] = [];
  private readonly proxies = new Map<string, TcpProxy>();
  private readonly managers: DisasterRecoveryManager[] = [];
  private readonly writers: NumberedWriter[] = [];
  writerConfig!: Config;
  applicationConfigFile!: string;
  private destroyed = false;

  constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly etcd: EtcdCluster | undefined,
    private readonly ownEtcd: boolean,
    readonly pg: PgCluster,
    private readonly removeDir: () => void,
  ) {}

  get sidecars(): readonly SidecarProcess[] {
    return this.sidecarList;
  }

  private databaseNames(): string[] {
    return this.pg.all().map((_, i) => (i === 0 ? 'primary' : `standby${i}`));
  }

  server(database: string): PgServer {
    const i = this.databaseNames().indexOf(database);
    if (i < 0) throw new Error(`no database ${database} in this cluster`);
    return this.pg.all()[i]!;
  }

  /** Database entries as `sidecar` (undefined: the application) reaches them: through its proxies, or directly. */
  async entries(sidecar: string | undefined, proxied: boolean): Promise<DbEntry[]> {
    const names = this.databaseNames();
    const out: DbEntry[] = [];
    for (const [i, server] of this.pg.all().entries()) {
      let url = server.url({ database: APP_DB });
      if (proxied && sidecar !== undefined) {
        const proxy = await startTcpProxy(server.port);
        this.proxies.set(`${sidecar}/${names[i]}`, proxy);
        url = url.replace(`:${server.port}/`, `:${proxy.port}/`);
      }
      out.push({ name: names[i]!, type: i === 0 ? 'primary' : 'secondary', priority: i, url });
    }
    return out;
  }

  proxy(sidecar: SidecarProcess, database: string): TcpProxy {
    const p = this.proxies.get(`${sidecar.name}/${database}`);
    if (!p) throw new Error(`no proxy between sidecar ${sidecar.name} and ${database} (start the cluster with proxied: true)`);
    return p;
  }

  private usable(): Sidecar[] {
    return this.sidecarList.filter((s) => s.running && !s.frozen);
  }

  async leaders(): Promise<SidecarProcess[]> {
    const usable = this.usable();
    const says = await Promise.all(usable.map((s) => s.isLeader()));
    return usable.filter((_, i) => says[i] === true);
  }

  async leader(timeoutMs = 30_000, except?: SidecarProcess): Promise<SidecarProcess> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leaders = (await this.leaders()).filter((s) => s !== except);
      if (leaders.length === 1) return leaders[0]!;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for exactly one sidecar to say it leads (dr_sidecar_is_leader 1 on /metrics); ` +
            `now: ${leaders.map((s) => s.name).join(', ') || 'none'}\n${await this.describe()}`,
        );
      }
      await sleep(100);
    }
  }

  primaries(): Promise<PrimaryAnswer[]> {
    return Promise.all(this.usable().map((s) => s.primary()));
  }

  async waitPrimaries(status: 200 | 503, name: string | undefined, timeoutMs: number): Promise<PrimaryAnswer[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answers = await this.primaries();
      if (answers.every((a) => a.status === status && (status !== 200 || a.name === name))) return answers;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for every sidecar's /primary to answer ${status}${name ? ` naming ${name}` : ''}; now:\n` +
            answers.map((a) => `  ${a.sidecar}: ${a.status} ${a.body}`).join('\n') +
            `\n${await this.describe()}`,
        );
      }
      await sleep(100);
    }
  }

  async cli(args: string[], sidecar?: SidecarProcess): Promise<CliResult> {
    const config = sidecar ? (sidecar as Sidecar).configFile : this.applicationConfigFile;
    return runCli([...args, '--config', config], { cwd: this.dir, timeoutMs: 60_000 });
  }

  async history(sidecar?: SidecarProcess): Promise<FailoverRecordJson[]> {
    const r = await this.cli(['history', '--json', '--limit', '50'], sidecar);
    if (r.code !== 0) throw new Error(`disaster-recovery history exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as FailoverRecordJson[];
  }

  async waitHistory(what: string, timeoutMs: number, match: (r: FailoverRecordJson) => boolean): Promise<FailoverRecordJson> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const found = (await this.history()).find(match);
        if (found) return found;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} in the history${last ? ` (${String(last)})` : ''}\n${await this.describe()}`);
      await sleep(200);
    }
  }

  async openApplication(): Promise<DisasterRecoveryManager> {
    const manager = await DisasterRecoveryManager.open({ config: this.writerConfig, logger: silentLogger(), failoverWaitMs: 30_000 });
    this.managers.push(manager);
    return manager;
  }

  async startWriter(opts: { paceMs?: number } = {}): Promise<NumberedWriter> {
    const manager = await this.openApplication();
    const writer = new NumberedWriter(manager, { paceMs: opts.paceMs ?? 10 }).start();
    this.writers.push(writer);
    return writer;
  }

  async describe(): Promise<string> {
    const parts = this.sidecarList.map((s) => `--- sidecar ${s.name} (${s.running ? (s.frozen ? 'frozen' : 'running') : 'killed'}) ---\n${s.logTail()}`);
    try {
      const history = await this.history();
      parts.push(`--- history ---\n${history.map((r) => `#${r.id} ${r.trigger} ${r.from} -> ${r.to}: ${r.result}${r.error ? ` (${r.error})` : ''}`).join('\n') || '(empty)'}`);
    } catch (error) {
      parts.push(`--- history ---\n(could not read: ${(error as Error).message.split('\n')[0]})`);
    }
    return parts.join('\n');
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const w of this.writers) await w.stop(10_000).catch(() => undefined);
    for (const m of this.managers) await m.stop().catch(() => undefined);
    await Promise.all(this.sidecarList.map((s) => s.stop()));
    for (const p of this.proxies.values()) await p.close();
    await this.pg.destroy();
    if (this.ownEtcd) await this.etcd?.destroy();
    live.delete(this);
    rearmWatchdog();
    this.removeDir();
  }
}

const MEMBER_NAMES = 'abcdefghij';

/**
 * Starts the databases, the etcd cluster (unless given), and the sidecars; resolves once
 * every sidecar answers /healthz. Everything is destroyed when the test ends (`t.after`).
 */
export async function startSidecarCluster(t: { after(fn: () => Promise<void>): void }, opts: SidecarClusterOptions = {}): Promise<SidecarCluster> {
  const count = opts.sidecars ?? 3;
  const backend = opts.backend ?? 'etcd';
  if (backend === 'sqlite' && count !== 1) throw new Error('the SQLite state is one sidecar on one host: sidecars must be 1');
  const ttl = opts.ttl ?? 3;
  const folder = tempFolder('dr-sidecars-');
  const prefix = `/dr-test/${randomUUID().slice(0, 8)}/`;
  let etcd = opts.etcd;
  // What is made so far, for the cleanup of a start that fails half-way.
  const made: { pg?: PgCluster; cluster?: Cluster } = {};
  t.after(async () => {
    if (made.cluster) await made.cluster.destroy();
    else {
      await made.pg?.destroy();
      if (!opts.etcd) await etcd?.destroy();
      folder.cleanup();
    }
  });
  if (backend === 'etcd' && !etcd) etcd = await startEtcdCluster({ members: 3 });
  const standbys = opts.standbys ?? 2;
  const names = Array.from({ length: standbys }, (_, i) => `standby${i + 1}`);
  const pg = (made.pg = await startPgCluster({ standbys, synchronous: standbys > 0 ? `FIRST 1 (${names.join(', ')})` : undefined }));
  const cluster = (made.cluster = new Cluster(folder.dir, prefix, backend === 'etcd' ? etcd : undefined, backend === 'etcd' && !opts.etcd, pg, folder.cleanup));
  live.add(cluster);

  const settings = {
    dir: folder.dir,
    healthCheckInterval: opts.interval ?? 1,
    checkInterval: opts.interval ?? 1,
    threshold: opts.threshold ?? 3,
    probeTimeout: 1,
    cooldown: 0,
    retryDelay: 1,
    autoFailover: opts.autoFailover ?? true,
    ...(opts.prePromote === undefined ? {} : { prePromote: opts.prePromote }),
  };
  const state = (member: string | undefined) =>
    backend === 'sqlite'
      ? `{ path: "${path.join(folder.dir, 'dr-state.db')}" }`
      : `{ backend: etcd, etcd: { endpoints: [${etcd!.endpoints.map((e) => `"${e}"`).join(', ')}], prefix: "${prefix}", ttl: ${ttl}${member ? `, member: "${member}"` : ''} } }`;
  for (let i = 0; i < count; i++) {
    const name = MEMBER_NAMES[i]!;
    const port = await freePort();
    const { file } = writeFailoverConfig({
      ...settings,
      port,
      fileName: `sidecar-${name}.yaml`,
      backupDir: path.join(folder.dir, `backups-${name}`),
      databases: await cluster.entries(name, opts.proxied ?? false),
      // The SQLite store is created by the first config written (the sidecar's, as start-monitoring would).
      ...(backend === 'sqlite' ? {} : { state: state(name) }),
    });
    cluster.sidecarList.push(new Sidecar(name, port, file, folder.dir));
  }
  const application = writeFailoverConfig({ ...settings, fileName: 'application.yaml', databases: await cluster.entries(undefined, false), state: state(undefined) });
  cluster.writerConfig = application.config;
  cluster.applicationConfigFile = application.file;
  // One at a time: on two cores, three Node processes compiling at once each take seconds longer.
  for (const s of cluster.sidecarList) {
    await s.start();
    rearmWatchdog();
  }
  return cluster;
}
