/**
 * Real-server PostgreSQL harness for tests: throwaway clusters (initdb + pg_ctl),
 * streaming standbys (pg_basebackup), crashes (SIGKILL), hangs (SIGSTOP).
 * As root every server command runs as the `postgres` user. Servers still
 * running when the process exits (or gets SIGINT/SIGTERM) are stopped and
 * their directories removed.
 */
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PgServer {
  readonly port: number;
  readonly dataDir: string;
  /** postgresql://USER[:PASSWORD]@127.0.0.1:PORT/DB  (default user postgres, db postgres) */
  url(opts?: { database?: string; user?: string; password?: string }): string;
  /** run SQL through a short-lived pg.Client as superuser (unix socket, trust); returns rows */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  createDatabase(name: string): Promise<void>;
  /** creates a login role with a password (for tests of password masking) */
  createUser(name: string, password: string, superuser?: boolean): Promise<void>;
  /** pid from the first line of postmaster.pid */
  postmasterPid(): number;
  /** pg_ctl stop -w (resumes a paused server first) */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  /** start again after stop/kill9 (same port), waits until ready */
  start(): Promise<void>;
  /** SIGKILL the postmaster (a real crash); resolves when the port refuses and its children are gone */
  kill9(): Promise<void>;
  /** SIGSTOP the postmaster: TCP connects complete, nothing ever answers */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  isRunning(): boolean;
  /** stop immediate if running (resume first if paused), rm -rf the dir */
  destroy(): Promise<void>;
}

const DEFAULT_SETTINGS: Record<string, string> = {
  wal_level: 'replica',
  max_wal_senders: '10',
  hot_standby: 'on',
  shared_buffers: '16MB',
  max_connections: '100',
  wal_keep_size: '64MB',
};

const BIN_CANDIDATES = ['/usr/lib/postgresql/15/bin'];
let binDir: string | undefined;

/** Directory of the PostgreSQL server binaries; throws a clear error when missing. */
export function pgBinDir(): string {
  if (binDir) return binDir;
  const needed = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup'];
  const dirs = [...BIN_CANDIDATES];
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (cfg.status === 0 && cfg.stdout.trim()) dirs.push(cfg.stdout.trim());
  dirs.push(...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean));
  for (const d of dirs) {
    if (needed.every((b) => existsSync(path.join(d, b)))) return (binDir = d);
  }
  const missing = needed.find((b) => !dirs.some((d) => existsSync(path.join(d, b)))) ?? needed[0];
  throw new Error(
    `PostgreSQL server binary "${missing}" not found (looked in ${BIN_CANDIDATES.join(', ')}, pg_config --bindir, PATH); ` +
      'install it with: apt-get install -y postgresql',
  );
}

/** uid/gid of `postgres` when we are root (the server refuses to run as root), else undefined. */
let pgIds: { uid: number; gid: number } | undefined | null = null;
function postgresIds(): { uid: number; gid: number } | undefined {
  if (pgIds !== null) return pgIds;
  if (process.getuid?.() !== 0) return (pgIds = undefined);
  const id = (flag: string): number => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`running as root but user "postgres" is missing (${r.stderr.trim()}); apt-get install -y postgresql`);
    return Number(r.stdout.trim());
  };
  return (pgIds = { uid: id('-u'), gid: id('-g') });
}

/** spawn options that run a command as the server's owner, with PG* env vars removed. */
function asOwner(cwd: string): SpawnOptions {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return { cwd, env, ...postgresIds(), stdio: ['ignore', 'pipe', 'pipe'] };
}

async function run(bin: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const child = spawn(path.join(pgBinDir(), bin), args, asOwner(cwd));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function mustRun(bin: string, args: string[], cwd: string): Promise<void> {
  const r = await run(bin, args, cwd);
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} failed (exit ${r.code}):\n${r.out}`);
}

/** A free TCP port on 127.0.0.1 (listen on 0, read, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** true when a TCP connect to 127.0.0.1:port completes (even if nobody answers). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** [state, ppid] of a process from /proc, or undefined when it does not exist. */
function procStat(pid: number): [string, number] | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
    return [f[0] ?? '?', Number(f[1])];
  } catch {
    return undefined;
  }
}
/** alive = exists and is not a zombie (PID 1 here may never reap orphans). */
const alive = (pid: number): boolean => ['Z', 'X', undefined].indexOf(procStat(pid)?.[0]) < 0;
const childrenOf = (pid: number): number[] =>
  readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => procStat(p)?.[1] === pid);

/** process.kill that ignores a process that is already gone. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch { /* already gone */ }
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

const registry = new Set<Server>();
let hooksInstalled = false;

/** Synchronous last-resort cleanup: stop every registered server, remove its directory. */
function cleanupSync(): void {
  for (const s of registry) {
    const pid = s.pidOrUndefined();
    if (pid !== undefined && alive(pid)) {
      signal(pid, 'SIGCONT');
      const r = spawnSync(path.join(pgBinDir(), 'pg_ctl'), ['stop', '-D', s.dataDir, '-m', 'immediate', '-w', '-t', '10'], {
        ...asOwner(s.root),
        stdio: 'ignore',
      });
      if (r.status !== 0) signal(pid, 'SIGKILL');
    }
    rmSync(s.root, { recursive: true, force: true });
  }
  registry.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      cleanupSync();
      process.exit(code);
    });
  }
}

class Server implements PgServer {
  readonly dataDir: string;
  readonly sockDir: string;
  readonly logFile: string;
  private paused = false;

  constructor(
    readonly root: string,
    private portNo: number,
    private readonly portFixed: boolean,
    readonly settings: Record<string, string>,
  ) {
    this.dataDir = path.join(root, 'data');
    this.sockDir = path.join(root, 'sock');
    this.logFile = path.join(root, 'server.log');
    registry.add(this);
  }

  get port(): number {
    return this.portNo;
  }

  url(opts: { database?: string; user?: string; password?: string } = {}): string {
    const user = encodeURIComponent(opts.user ?? 'postgres');
    const pw = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}` : '';
    return `postgresql://${user}${pw}@127.0.0.1:${this.port}/${encodeURIComponent(opts.database ?? 'postgres')}`;
  }

  async query<T = Record<string, unknown>>(sql: string, params?: unknown[], database = 'postgres'): Promise<T[]> {
    const client = new pg.Client({ host: this.sockDir, port: this.port, user: 'postgres', database });
    // A fence ends every session of its database, this one too, maybe between its query and its end:
    // what the query saw comes through its own rejection; an 'error' event with no listener would crash the test.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  async createDatabase(name: string): Promise<void> {
    await this.query(`CREATE DATABASE ${ident(name)}`);
  }

  async createUser(name: string, password: string, superuser = false): Promise<void> {
    const pw = `'${password.replace(/'/g, "''")}'`;
    await this.query(`CREATE ROLE ${ident(name)} LOGIN PASSWORD ${pw}${superuser ? ' SUPERUSER' : ''}`);
  }

  pidOrUndefined(): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  postmasterPid(): number {
    const pid = this.pidOrUndefined();
    if (pid === undefined) throw new Error(`no postmaster.pid in ${this.dataDir} (server not running)`);
    return pid;
  }

  isRunning(): boolean {
    const pid = this.pidOrUndefined();
    return pid !== undefined && alive(pid);
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  }

  /**
   * After kill9 the lock files still name the dead postmaster. PostgreSQL ignores them only if
   * kill(pid, 0) fails, which it does not for a zombie (an unreaped orphan), so remove them here.
   */
  private removeStaleLocks(): void {
    for (const f of [path.join(this.dataDir, 'postmaster.pid'), path.join(this.sockDir, `.s.PGSQL.${this.port}.lock`)]) {
      try {
        const pid = Number(readFileSync(f, 'utf8').split('\n')[0]);
        if (!alive(pid)) unlinkSync(f);
      } catch { /* no lock file */ }
    }
  }

  /** pg_ctl start -w; picks another port and retries when the port was taken (unless fixed). */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.removeStaleLocks();
      const opts = [`-p ${this.port}`, `-k ${shq(this.sockDir)}`, '-c listen_addresses=127.0.0.1'];
      for (const [k, v] of Object.entries(this.settings)) opts.push(`-c ${shq(`${k}=${v}`)}`);
      const r = await run('pg_ctl', ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', '-o', opts.join(' ')], this.root);
      if (r.code === 0) {
        this.paused = false;
        return;
      }
      const log = this.logTail();
      if (!this.portFixed && attempt < 4 && /could not (bind|create any TCP)|Address already in use/i.test(log)) {
        this.portNo = await freePort();
        continue;
      }
      throw new Error(`PostgreSQL failed to start on port ${this.port} (${this.dataDir}):\n${r.out}\n--- server log tail ---\n${log}`);
    }
  }

  async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (this.paused) this.resume();
    const r = await run('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60'], this.root);
    if (r.code !== 0) throw new Error(`pg_ctl stop -m ${mode} failed:\n${r.out}\n--- server log tail ---\n${this.logTail()}`);
  }

  async kill9(): Promise<void> {
    const pid = this.postmasterPid();
    if (this.paused) this.resume(); // a stopped process still dies on SIGKILL, but its children need to run
    const children = childrenOf(pid);
    process.kill(pid, 'SIGKILL');
    // Children exit on their own when they notice postmaster death; a busy backend may take longer,
    // and start() fails while any of them still holds the shared memory, so kill stragglers after 10 s.
    const gone = async (): Promise<boolean> => !(await accepts(this.port)) && !alive(pid) && !children.some(alive);
    try {
      await waitFor(`postmaster ${pid} and children to exit`, 10_000, gone);
    } catch {
      for (const c of children.filter(alive)) signal(c, 'SIGKILL');
      await waitFor(`postmaster ${pid} and children to exit`, 5_000, gone);
    }
  }

  pause(): void {
    process.kill(this.postmasterPid(), 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    const pid = this.pidOrUndefined();
    if (pid !== undefined && alive(pid)) signal(pid, 'SIGCONT');
    this.paused = false;
  }

  async destroy(): Promise<void> {
    if (this.isRunning()) await this.stop('immediate');
    rmSync(this.root, { recursive: true, force: true });
    registry.delete(this);
  }
}

/** mkdtemp root (0755) with data (0700), sock and log owned by the server's user. */
async function newServer(port: number | undefined, settings: Record<string, string>): Promise<Server> {
  pgBinDir();
  installHooks();
  const root = await mkdtemp(path.join(os.tmpdir(), 'dr-pg-'));
  await chmod(root, 0o755);
  const s = new Server(root, port ?? (await freePort()), port !== undefined, settings);
  await mkdir(s.dataDir, { mode: 0o700 });
  await mkdir(s.sockDir, { mode: 0o755 });
  await writeFile(s.logFile, '');
  const ids = postgresIds();
  if (ids) for (const p of [s.dataDir, s.sockDir, s.logFile]) await chown(p, ids.uid, ids.gid);
  return s;
}

/** initdb (-A trust -U postgres) and start a fresh primary on 127.0.0.1. */
export async function startPostgres(
  opts: { port?: number; settings?: Record<string, string>; passwordAuth?: boolean } = {},
): Promise<PgServer> {
  const s = await newServer(opts.port, { ...DEFAULT_SETTINGS, ...opts.settings });
  try {
    await mustRun('initdb', ['-D', s.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], s.root);
    if (opts.passwordAuth) {
      // socket stays trust (the harness connects there); TCP needs a password except for replication.
      const hba = [
        'local all all trust',
        'local replication all trust',
        'host replication postgres 127.0.0.1/32 trust',
        'host all all 127.0.0.1/32 scram-sha-256',
        'host all all ::1/128 scram-sha-256',
      ];
      await writeFile(path.join(s.dataDir, 'pg_hba.conf'), hba.join('\n') + '\n');
    }
    await s.start();
    return s;
  } catch (e) {
    await s.destroy().catch(() => undefined);
    throw e;
  }
}

/**
 * pg_basebackup -R -X stream from primary, started on its own port; returns when it is in
 * recovery and streaming. Settings: defaults, then the primary's, then opts.settings.
 */
export async function startStandby(
  primary: PgServer,
  opts: { port?: number; settings?: Record<string, string>; slotName?: string } = {},
): Promise<PgServer> {
  const inherited = primary instanceof Server ? primary.settings : {};
  const s = await newServer(opts.port, { ...DEFAULT_SETTINGS, ...inherited, ...opts.settings });
  try {
    const args = ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', s.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'];
    if (opts.slotName) args.push('-C', '-S', opts.slotName);
    await mustRun('pg_basebackup', args, s.root);
    await s.start();
    await waitFor(`standby on port ${s.port} to be in recovery and streaming`, 30_000, async () => {
      const [r] = await s.query<{ rec: boolean; status: string | null }>(
        'SELECT pg_is_in_recovery() AS rec, (SELECT status FROM pg_stat_wal_receiver) AS status',
      );
      return r?.rec === true && r.status === 'streaming';
    });
    return s;
  } catch (e) {
    const tail = s.logTail();
    await s.destroy().catch(() => undefined);
    throw e instanceof Error ? new Error(`${e.message}\n--- standby log tail ---\n${tail}`) : e;
  }
}

/** wait until standby has replayed everything primary has written so far */
export async function waitForReplay(primary: PgServer, standby: PgServer, timeoutMs = 15_000): Promise<void> {
  const [p] = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const target = p?.lsn ?? '0/0';
  await waitFor(`standby to replay up to ${target}`, timeoutMs, async () => {
    const [r] = await standby.query<{ ok: boolean | null }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [target]);
    return r?.ok === true;
  });
}
