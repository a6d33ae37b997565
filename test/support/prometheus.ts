/**
 * Real Prometheus and Alertmanager for end-to-end tests, on loopback ports, each
 * in a temp directory of its own (config, TSDB / storage), set for fast
 * pipelines (ENVIRONMENT.md): 1 s scrapes and evaluations, alerts re-sent after
 * 1 s, group_wait 1 s, no Alertmanager cluster. The configs are the shipped ones
 * (prometheus/prometheus.yml, prometheus/alertmanager.yml) with only addresses,
 * paths and timings changed, so the test also runs what a user deploys.
 * Processes still running when the test process exits (or gets SIGINT/SIGTERM)
 * are killed and their directories removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { fromRoot } from './paths.js';
import { freePort } from './postgres.js';
import { requireTool } from './tools.js';

export interface RunningPeer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly dir: string;
  /** What the process wrote so far (both streams), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the directory. */
  stop(): Promise<void>;
}

export interface PrometheusServer extends RunningPeer {
  /** An instant query; the result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Alerts as Prometheus sees them (pending and firing). */
  alerts(): Promise<Array<{ labels: Record<string, string>; state: string; activeAt: string }>>;
}

export interface AlertmanagerServer extends RunningPeer {
  /** Alerts Alertmanager holds. */
  alerts(): Promise<Array<{ labels: Record<string, string>; status: { state: string } }>>;
}

const running = new Map<ChildProcess, string>();
let hooksInstalled = false;

function cleanupSync(): void {
  for (const [child, dir] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  running.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      cleanupSync();
      process.exit(code);
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `bin args`, waits until GET `url`/-/ready answers 200. */
async function startPeer(what: string, bin: string, args: string[], dir: string, url: string): Promise<RunningPeer> {
  installHooks();
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.set(child, dir);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone) {
      await stop();
      throw new Error(`${what} exited before it was ready:\n${out}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${what} was not ready within 30 s:\n${out}`);
    }
    await sleep(100);
  }
  return { url, dir, output: () => out, stop };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export interface PrometheusOptions {
  /** `host:port` of the sidecar to scrape. */
  target: string;
  /** Text of the rule file (what `disaster-recovery rules` printed). */
  rules: string;
  /** `host:port` of Alertmanager. */
  alertmanager: string;
}

/** The shipped prometheus/prometheus.yml with 1 s intervals, this test's addresses and rule file. */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const bin = requireTool('prometheus', 'apt-get install -y --no-install-recommends prometheus');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dr-prometheus-'));
  const config = parse(readFileSync(fromRoot('prometheus/prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    rule_files: string[];
    alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
    scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  writeFileSync(path.join(dir, 'dr.rules.yml'), opts.rules);
  config.rule_files = ['dr.rules.yml'];
  config.alerting.alertmanagers[0]!.static_configs = [{ targets: [opts.alertmanager] }];
  const job = config.scrape_configs.find((s) => s.job_name === 'dr-sidecar');
  if (!job) throw new Error('prometheus/prometheus.yml has no dr-sidecar scrape job');
  job.static_configs = [{ targets: [opts.target] }];
  writeFileSync(path.join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const peer = await startPeer(
    'prometheus',
    bin,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Otherwise the first alert is dropped while Alertmanager is being discovered and re-sent only after a minute.
      '--rules.alert.resend-delay=1s',
      '--log.level=warn',
    ],
    dir,
    url,
  );
  return {
    ...peer,
    async query(expr) {
      const body = await getJson<{ data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }>(
        `${url}/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      return body.data.result;
    },
    async alerts() {
      return (await getJson<{ data: { alerts: Array<{ labels: Record<string, string>; state: string; activeAt: string }> } }>(`${url}/api/v1/alerts`)).data.alerts;
    },
  };
}

export interface AlertmanagerOptions {
  /** The sidecar's webhook URL. */
  webhook: string;
  /** The sidecar's server.auth_token; written to a 0600 file the config points at. */
  token: string;
}

/** The shipped prometheus/alertmanager.yml with group_wait 1 s, this test's webhook URL and token file. */
export async function startAlertmanager(opts: AlertmanagerOptions): Promise<AlertmanagerServer> {
  const bin = requireTool('prometheus-alertmanager', 'apt-get install -y --no-install-recommends prometheus-alertmanager');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dr-alertmanager-'));
  const config = parse(readFileSync(fromRoot('prometheus/alertmanager.yml'), 'utf8')) as {
    route: Record<string, unknown>;
    receivers: Array<{ name: string; webhook_configs?: Array<{ url: string; http_config?: { authorization?: { credentials_file?: string } } }> }>;
  };
  config.route.group_wait = '1s';
  config.route.group_interval = '1s';
  const hooks = config.receivers.flatMap((r) => r.webhook_configs ?? []);
  if (hooks.length !== 1 || !hooks[0]!.http_config?.authorization?.credentials_file) {
    throw new Error('prometheus/alertmanager.yml: expected one webhook with authorization.credentials_file');
  }
  hooks[0]!.url = opts.webhook;
  const tokenFile = path.join(dir, 'dr-token');
  writeFileSync(tokenFile, opts.token, { mode: 0o600 });
  hooks[0]!.http_config.authorization.credentials_file = tokenFile;
  writeFileSync(path.join(dir, 'alertmanager.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const peer = await startPeer(
    'alertmanager',
    bin,
    [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`,
      `--storage.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    dir,
    url,
  );
  return {
    ...peer,
    async alerts() {
      return getJson<Array<{ labels: Record<string, string>; status: { state: string } }>>(`${url}/api/v2/alerts`);
    },
  };
}
