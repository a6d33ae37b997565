/**
 * Real etcd clusters for tests: 1 or 3 `etcd` processes on free loopback ports,
 * each with its own data directory under one temporary folder. Members can be
 * killed (SIGKILL), stopped (SIGTERM), paused (SIGSTOP) and started again.
 *
 * Nothing outlives the test process: every member runs in its own process
 * group, an exit/SIGINT/SIGTERM hook kills them all, and a detached watchdog
 * shell kills them too when the test process itself is SIGKILLed (no hook runs then).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './postgres.js';
import { requireTool } from './tools.js';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** pid of the running process; undefined while stopped or killed. */
  readonly pid: number | undefined;
  readonly paused: boolean;
  /** The last lines the member logged (for failure messages). */
  log(): string;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Client URLs of every member, running or not (what a store is configured with). */
  readonly endpoints: string[];
  /** SIGKILL: a crash. Resolves once the process is gone. */
  kill(member: EtcdMember): Promise<void>;
  /** SIGTERM: a clean stop. Resolves once the process is gone. */
  stop(member: EtcdMember): Promise<void>;
  /** Starts a killed or stopped member again on its data directory, waits until it is healthy. */
  start(member: EtcdMember): Promise<void>;
  /** SIGSTOP: a frozen host; TCP connects still complete, nothing answers. */
  pause(member: EtcdMember): void;
  /** SIGCONT. */
  resume(member: EtcdMember): void;
  /** Waits until every running member reports healthy (a leader is elected and reads pass). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every member and removes the folder. Safe to call twice. */
  destroy(): Promise<void>;
}

const INSTALL = 'apt-get install -y etcd-server etcd-client (Debian package `etcd-server`)';
const START_TIMEOUT_MS = 30_000;

class Member implements EtcdMember {
  child: ChildProcess | undefined;
  paused = false;
  exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    readonly logFile: string,
    readonly args: string[],
  ) {}

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

const clusters = new Set<Cluster>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const cluster of clusters) cluster.destroySync();
  });
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      for (const cluster of clusters) cluster.destroySync();
      process.exit(code);
    });
  }
}

/** Signals a member's whole process group; a group already gone is fine. */
function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function healthy(member: Member): Promise<boolean> {
  try {
    const res = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

class Cluster implements EtcdCluster {
  readonly endpoints: string[];
  private watchdog: ChildProcess | undefined;
  private destroyed = false;

  constructor(
    readonly root: string,
    readonly members: Member[],
  ) {
    this.endpoints = members.map((m) => m.clientUrl);
  }

  async startAll(): Promise<void> {
    for (const m of this.members) this.spawn(m);
    this.startWatchdog();
    await this.waitHealthy(START_TIMEOUT_MS);
  }

  private spawn(m: Member): void {
    const out = openSync(m.logFile, 'a');
    // detached: a process group of its own, so a signal to the group reaches it and the test runner's Ctrl-C does not race our cleanup.
    const child = spawn(requireTool('etcd', INSTALL), m.args, { cwd: this.root, detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();
    m.child = child;
    m.paused = false;
    m.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** A shell outside our process group that kills the members once this process is gone, whatever killed it. */
  private startWatchdog(): void {
    const pids = this.members.map((m) => m.pid).filter((p): p is number => p !== undefined);
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; for p in ${pids.join(' ')}; do kill -CONT -$p; kill -KILL -$p; done 2>/dev/null; rm -rf '${this.root}'`;
    this.watchdog?.kill('SIGKILL');
    this.watchdog = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
    this.watchdog.unref();
  }

  async kill(member: EtcdMember): Promise<void> {
    await this.end(member as Member, 'SIGKILL');
  }

  async stop(member: EtcdMember): Promise<void> {
    await this.end(member as Member, 'SIGTERM');
  }

  private async end(m: Member, sig: NodeJS.Signals): Promise<void> {
    const pid = m.pid;
    if (pid === undefined) return;
    // Unreferenced so a forgotten cluster does not hold the test process open; referenced while we wait for it.
    m.child?.ref();
    signalGroup(pid, 'SIGCONT');
    signalGroup(pid, sig);
    await m.exited;
    m.child = undefined;
    m.paused = false;
  }

  async start(member: EtcdMember): Promise<void> {
    const m = member as Member;
    if (m.pid !== undefined) throw new Error(`etcd member ${m.name} is already running`);
    this.spawn(m);
    // The watchdog must know the new pid.
    this.startWatchdog();
    await this.waitHealthy(START_TIMEOUT_MS);
  }

  pause(member: EtcdMember): void {
    const m = member as Member;
    if (m.pid === undefined) throw new Error(`etcd member ${m.name} is not running`);
    signalGroup(m.pid, 'SIGSTOP');
    m.paused = true;
  }

  resume(member: EtcdMember): void {
    const m = member as Member;
    if (m.pid !== undefined) signalGroup(m.pid, 'SIGCONT');
    m.paused = false;
  }

  async waitHealthy(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const running = this.members.filter((m) => m.pid !== undefined && !m.paused);
    const deadline = Date.now() + timeoutMs;
    for (const m of running) {
      while (!(await healthy(m))) {
        if (m.pid === undefined) throw new Error(`etcd member ${m.name} exited while starting:\n${m.log()}`);
        if (Date.now() > deadline) throw new Error(`etcd member ${m.name} (${m.clientUrl}) not healthy after ${timeoutMs} ms:\n${m.log()}`);
        await sleep(100);
      }
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all(this.members.map((m) => this.kill(m)));
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const m of this.members) {
      if (m.pid === undefined) continue;
      signalGroup(m.pid, 'SIGCONT');
      signalGroup(m.pid, 'SIGKILL');
    }
    this.watchdog?.kill('SIGKILL');
    rmSync(this.root, { recursive: true, force: true });
    clusters.delete(this);
  }
}

/** A port-in-use failure of a member: another test took the free port between our probe and etcd's bind. */
function portTaken(m: Member): boolean {
  return /address already in use/i.test(m.log());
}

/**
 * Starts an etcd cluster of `members` members on loopback and waits until it is
 * healthy. Fails (never skips) when `etcd` is not installed.
 */
export async function startEtcdCluster(opts: { members?: 1 | 3 } = {}): Promise<EtcdCluster> {
  requireTool('etcd', INSTALL);
  installHooks();
  for (let attempt = 1; ; attempt++) {
    const cluster = await newCluster(opts.members ?? 3);
    clusters.add(cluster);
    try {
      await cluster.startAll();
      return cluster;
    } catch (error) {
      const retry = attempt < 3 && cluster.members.some(portTaken);
      await cluster.destroy();
      if (!retry) throw error;
    }
  }
}

async function newCluster(size: number): Promise<Cluster> {
  const root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'dr-etcd-')));
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const ports = [] as Array<{ client: number; peer: number }>;
  // Six ports probed one after another: the system may hand one out twice (each probe closes its socket), and two
  // members on one port leave a cluster of two that a single kill takes below quorum.
  const taken = new Set<number>();
  const distinctPort = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) return taken.add(port), port;
    }
  };
  for (const _ of names) ports.push({ client: await distinctPort(), peer: await distinctPort() });
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[i]!.peer}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const token = path.basename(root);
  const members = names.map((name, i) => {
    const clientUrl = `http://127.0.0.1:${ports[i]!.client}`;
    const dataDir = path.join(root, name);
    mkdirSync(dataDir, { mode: 0o700 });
    const args = [
      '--name', name,
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl(i),
      '--initial-advertise-peer-urls', peerUrl(i),
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
    ];
    return new Member(name, clientUrl, peerUrl(i), dataDir, path.join(root, `${name}.log`), args);
  });
  return new Cluster(root, members);
}

/** `etcdctl` against a cluster (for assertions made outside the code under test). */
export function etcdctl(cluster: EtcdCluster, args: string[]): string {
  const bin = requireTool('etcdctl', INSTALL);
  const r = spawnSync(bin, ['--endpoints', cluster.endpoints.join(','), '--dial-timeout', '2s', '--command-timeout', '5s', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}
