/**
 * The docker-compose stack, checked without a Docker engine: docker-compose
 * validates the file, every path it mounts or builds from is in the repository,
 * the services point at each other by the right names and ports, the sidecar's
 * config for the stack loads with the project's loader, the Prometheus and
 * Alertmanager configs pass promtool/amtool, and no secret is written into the
 * compose file or the configs. (The image: dockerfile.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../support/cli.js';
import { fromRoot, repoRoot } from '../support/paths.js';
import { requireTool } from '../support/tools.js';

/** Values no file may contain: whatever they are set to reaches only the containers' environments. */
const SECRETS = {
  POSTGRES_PASSWORD: 'pgSecretA7f3c9',
  REPLICATION_PASSWORD: 'replSecretB82d1e',
  DR_AUTH_TOKEN: 'tokenSecretC5e0b4',
  GRAFANA_ADMIN_PASSWORD: 'grafanaSecretD19a7',
};
const SECRET_VARIABLES = Object.keys(SECRETS);

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string | null>;
  /** `SOURCE:TARGET[:MODE]` (docker-compose 1.x prints the short syntax) or the long one. */
  volumes?: Array<string | { type: string; source?: string; target: string; read_only?: boolean }>;
  command?: string[] | string;
  entrypoint?: string[] | string;
  healthcheck?: { test: string[] };
  ports?: Array<string | { host_ip?: string; published?: number | string; target: number }>;
  depends_on?: Record<string, { condition: string }>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function dockerCompose(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const bin = requireTool('docker-compose', 'apt-get install -y --no-install-recommends docker-compose');
  // An empty env file: a developer's .env must not change what the test sees.
  const envFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dr-compose-')), 'empty.env');
  fs.writeFileSync(envFile, '');
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!SECRET_VARIABLES.includes(k) && !k.startsWith('DOCKER_')) base[k] = v;
  const r = spawnSync(bin, ['--env-file', envFile, '-f', fromRoot('docker-compose.yml'), ...args], {
    cwd: repoRoot,
    env: { ...base, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  fs.rmSync(path.dirname(envFile), { recursive: true, force: true });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let resolved: ComposeFile | undefined;
/** The file as docker-compose resolves it (absolute paths, variables set), with the secrets set. */
function resolvedCompose(): ComposeFile {
  if (resolved) return resolved;
  const r = dockerCompose(['config'], SECRETS);
  assert.equal(r.status, 0, `docker-compose config failed:\n${r.stderr}`);
  return (resolved = parse(r.stdout) as ComposeFile);
}

interface Mount {
  bind: boolean;
  source: string;
  target: string;
  readOnly: boolean;
}
function mountsOf(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { bind: v.type === 'bind', source: v.source ?? '', target: v.target, readOnly: v.read_only === true };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { bind: source.startsWith('/') || source.startsWith('.'), source, target, readOnly: mode.split(',').includes('ro') };
  });
}
const bindMounts = (service: ComposeService) => new Map(mountsOf(service).filter((m) => m.bind).map((m) => [m.target, inRepo(m.source)]));

/** The host address a published port listens on (`IP:HOST:CONTAINER[/proto]`, or the long syntax). */
function hostIpOf(port: NonNullable<ComposeService['ports']>[number]): string | undefined {
  if (typeof port !== 'string') return port.host_ip;
  const parts = port.split(':');
  return parts.length === 3 ? parts[0] : undefined;
}

/** The sidecar services of the stack, sharing one etcd. */
const SIDECARS = ['sidecar', 'sidecar-2'];
const rawCompose = () => parse(fs.readFileSync(fromRoot('docker-compose.yml'), 'utf8')) as ComposeFile;
const text = (rel: string) => fs.readFileSync(fromRoot(rel), 'utf8');
const inRepo = (p: string) => path.relative(repoRoot, p);

describe('docker-compose.yml', () => {
  test('docker-compose validates it (config -q) when the secrets are set', () => {
    const r = dockerCompose(['config', '-q'], SECRETS);
    assert.equal(r.status, 0, `docker-compose -f docker-compose.yml config -q:\n${r.stderr}`);
  });

  test('it refuses to run without the secrets, and says where they go', () => {
    const r = dockerCompose(['config', '-q'], {});
    assert.notEqual(r.status, 0, 'docker-compose accepted the file without any secret set');
    assert.match(r.stderr, /is not set, copy \.env\.example to \.env/);
  });

  test('every path it builds from or mounts exists in the repository', () => {
    const compose = resolvedCompose();
    const paths: string[] = [];
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.build) {
        paths.push(service.build.context, path.resolve(service.build.context, service.build.dockerfile ?? 'Dockerfile'));
      }
      for (const m of mountsOf(service).filter((m) => m.bind)) {
        assert.ok(m.readOnly, `${name}: the bind mount of ${inRepo(m.source)} should be read-only`);
        paths.push(m.source);
      }
    }
    assert.ok(paths.length >= 8, `only ${paths.length} paths found: ${paths.join(', ')}`);
    for (const p of paths) {
      assert.ok(!path.relative(repoRoot, p).startsWith('..'), `${p} is outside the repository`);
      assert.ok(fs.existsSync(p), `${inRepo(p)} is mounted or built from but does not exist`);
    }
  });

  test('the stack has its services, images pinned to versions, and a healthcheck each', () => {
    const compose = resolvedCompose();
    assert.deepEqual(Object.keys(compose.services).sort(), ['alertmanager', 'etcd', 'grafana', 'postgres-primary', 'postgres-standby', 'prometheus', 'sidecar', 'sidecar-2']);
    for (const [name, service] of Object.entries(compose.services)) {
      assert.ok(service.healthcheck?.test?.length, `${name} has no healthcheck`);
      if (service.build) continue;
      assert.match(service.image ?? '', /^[\w./-]+:v?\d+(\.\d+)+(-[\w.]+)?$/, `${name}: image "${service.image}" is not pinned to a version`);
    }
    assert.match(compose.services['postgres-primary']!.image!, /^postgres:15\./, 'PostgreSQL 15, the major the tests and the image\'s pg_dump use');
    assert.equal(compose.services['postgres-standby']!.image, compose.services['postgres-primary']!.image, 'a standby runs the primary\'s version');
  });

  test('published ports listen on loopback only', () => {
    for (const [name, service] of Object.entries(resolvedCompose().services)) {
      for (const port of service.ports ?? []) assert.equal(hostIpOf(port), '127.0.0.1', `${name} publishes ${JSON.stringify(port)} beyond this host`);
    }
  });

  test('the standby is made by pg_basebackup from the primary and streams from it', () => {
    const { services } = rawCompose();
    const standby = [services['postgres-standby']!.command].flat().join('\n');
    assert.match(standby, /pg_basebackup --host=postgres-primary --username=replicator/);
    assert.match(standby, /--write-recovery-conf --wal-method=stream/);
    assert.deepEqual(services['postgres-standby']!.depends_on, { 'postgres-primary': { condition: 'service_healthy' } });
    const primary = [services['postgres-primary']!.command].flat().join('\n');
    assert.match(primary, /CREATE ROLE replicator WITH REPLICATION LOGIN/);
    assert.match(primary, /host replication replicator all scram-sha-256/);
    // test/compose/replication.test.ts runs both scripts against real PostgreSQL servers.
  });

  test('secrets are required variables, never values, in the compose file', () => {
    const raw = text('docker-compose.yml');
    for (const [name, service] of Object.entries(rawCompose().services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (!/PASSWORD|TOKEN|SECRET/.test(key)) continue;
        assert.match(String(value), /^\$\{[A-Z_]+:\?[^}]+\}$/, `${name}: ${key} must be \${VAR:?message}, not a value or a default`);
      }
    }
    for (const variable of SECRET_VARIABLES) assert.ok(raw.includes(`\${${variable}:?`), `${variable} is not used as a required variable`);
    // Where the secrets end up once set: environment entries of the services, nowhere else.
    const compose = resolvedCompose();
    for (const [name, service] of Object.entries(compose.services)) {
      const { environment: _environment, ...rest } = service;
      const elsewhere = JSON.stringify(rest);
      for (const [variable, secret] of Object.entries(SECRETS)) assert.ok(!elsewhere.includes(secret), `${name}: ${variable} appears outside its environment`);
    }
  });

  test('.env.example lists every secret, with no value', () => {
    const example = text('.env.example');
    for (const variable of SECRET_VARIABLES) assert.match(example, new RegExp(`^${variable}=$`, 'm'), `.env.example: ${variable}= (empty) is missing`);
  });
});

describe('no secret in the repository\'s stack files', () => {
  const files = [
    'docker-compose.yml',
    'Dockerfile',
    'config/compose.yaml',
    'prometheus/compose/prometheus.yml',
    'prometheus/compose/alertmanager.yml',
    'grafana/provisioning/datasources/prometheus.yml',
    'grafana/provisioning/dashboards/dashboards.yml',
  ];

  test('no password, token or credential is written as a literal', () => {
    for (const file of files) {
      const lines = text(file).split('\n');
      lines.forEach((line, i) => {
        if (/^\s*#/.test(line)) return;
        const at = `${file}:${i + 1}: ${line.trim()}`;
        // `password: x`, `PASSWORD=x`, `auth_token: "x"`, `credentials: x`: only ${VAR} references (or a file path) may follow.
        // A shell variable ($VAR, $$VAR in compose) or a psql one (PASSWORD :'name') is a reference too.
        const assignment = /\b(\w*(?:password|passwd|token|secret|credentials))\b["']?\s*[:=]\s*["']?([^"'\s#]+)/i.exec(line);
        if (assignment && !/PASSWORD :'\w+'/.test(line)) assert.match(assignment[2]!, /^\$\$?\{?\w/, at);
        // postgresql://user:password@host: the password must be a ${VAR} reference.
        for (const m of line.matchAll(/\w+:\/\/[^:/@\s]+:([^@\s]+)@/g)) assert.match(m[1]!, /^\$\{\w+\}$/, at);
      });
    }
  });
});

describe('config/compose.yaml: the sidecars of the stack', () => {
  const env = { POSTGRES_PASSWORD: SECRETS.POSTGRES_PASSWORD, DR_AUTH_TOKEN: SECRETS.DR_AUTH_TOKEN, DR_MEMBER: 'sidecar' };

  test('loads with the project\'s config loader given the environment', () => {
    const config = loadConfig(fromRoot('config/compose.yaml'), env, '/');
    const services = Object.keys(rawCompose().services);
    const pg = config.databases.map((d) => d.target);
    assert.deepEqual(config.databases.map((d) => [d.name, d.type, d.enabled]), [['primary', 'primary', true], ['standby', 'secondary', true]]);
    for (const target of pg) {
      assert.equal(target.engine, 'postgresql');
      if (target.engine !== 'postgresql') continue;
      assert.ok(services.includes(target.host), `database host ${target.host} is not a compose service`);
      assert.equal(target.password, SECRETS.POSTGRES_PASSWORD);
    }
    assert.equal(config.server.host, '0.0.0.0', 'reachable by Prometheus and Alertmanager on the compose network');
    assert.equal(config.server.port, 9898);
    assert.equal(config.server.auth_token, SECRETS.DR_AUTH_TOKEN);
    // State and backups live on the sidecar's volume.
    const dataMount = mountsOf(rawCompose().services.sidecar!).find((m) => m.source === 'dr-data')!.target;
    assert.ok(config.state.path.startsWith(`${dataMount}/`), `state.path ${config.state.path} is not on the dr-data volume (${dataMount})`);
    assert.ok(config.backup.backup_dir.startsWith(`${dataMount}/`), `backup_dir ${config.backup.backup_dir} is not on the dr-data volume`);
    assert.ok(config.secrets.includes(SECRETS.POSTGRES_PASSWORD) && config.secrets.includes(SECRETS.DR_AUTH_TOKEN), 'both are scrubbed from logs');
  });

  test('without the environment it is refused, naming each missing variable', () => {
    assert.throws(
      () => loadConfig(fromRoot('config/compose.yaml'), {}, '/'),
      (error: unknown) => error instanceof ConfigError && ['POSTGRES_PASSWORD', 'DR_AUTH_TOKEN', 'DR_MEMBER'].every((v) => error.message.includes(v)),
    );
  });

  test('the compose file mounts it where DR_CONFIG points, in both sidecars', () => {
    for (const name of SIDECARS) {
      const sidecar = rawCompose().services[name]!;
      assert.ok(mountsOf(sidecar).some((m) => m.source === './config/compose.yaml' && m.target === '/etc/dr-sidecar/config.yaml' && m.readOnly), name);
      assert.equal(sidecar.environment!.DR_CONFIG, '/etc/dr-sidecar/config.yaml');
      for (const variable of ['POSTGRES_PASSWORD', 'DR_AUTH_TOKEN', 'DR_MEMBER']) assert.ok(variable in sidecar.environment!, `${name} needs ${variable}`);
    }
  });

  test('two sidecars share one etcd: the same state, a member name each, volumes and ports of their own', () => {
    const { services } = rawCompose();
    const config = loadConfig(fromRoot('config/compose.yaml'), env, '/');
    assert.equal(config.state.backend, 'etcd');
    const endpoints = config.state.etcd!.endpoints.map((e) => new URL(e));
    assert.deepEqual(endpoints.map((u) => u.hostname), ['etcd'], 'the endpoint is the compose service');
    const etcd = [services.etcd!.command].flat().join(' ');
    assert.match(etcd, new RegExp(`--listen-client-urls=http://0\\.0\\.0\\.0:${endpoints[0]!.port}\\b`), 'etcd listens where the sidecars look');
    assert.match(etcd, /--data-dir=\/etcd-data/);
    assert.ok(mountsOf(services.etcd!).some((m) => m.source === 'etcd-data' && m.target === '/etcd-data'), 'etcd keeps its data in a volume');
    const members = SIDECARS.map((name) => services[name]!.environment!.DR_MEMBER);
    assert.equal(new Set(members).size, SIDECARS.length, `each sidecar has its own member name: ${members.join(', ')}`);
    for (const name of SIDECARS) {
      assert.deepEqual(services[name]!.depends_on!.etcd, { condition: 'service_healthy' }, `${name} starts once etcd is healthy`);
      // The loader with each sidecar's own environment: same prefix, its own member.
      const own = loadConfig(fromRoot('config/compose.yaml'), { ...env, DR_MEMBER: services[name]!.environment!.DR_MEMBER! }, '/');
      assert.equal(own.state.etcd!.member, services[name]!.environment!.DR_MEMBER);
      assert.equal(own.state.etcd!.prefix, config.state.etcd!.prefix);
    }
    const volumes = SIDECARS.map((name) => mountsOf(services[name]!).find((m) => m.target === '/var/lib/dr-sidecar')!.source);
    assert.equal(new Set(volumes).size, SIDECARS.length, `a data volume each: ${volumes.join(', ')}`);
    const ports = SIDECARS.map((name) => JSON.stringify(services[name]!.ports));
    assert.equal(new Set(ports).size, SIDECARS.length, `a published port each: ${ports.join(', ')}`);
  });

  test('prometheus/compose/rules/dr.rules.yml is what `disaster-recovery rules` makes of it', async () => {
    const r = await runCli(['rules', '--config', fromRoot('config/compose.yaml')], { cwd: repoRoot, env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout === text('prometheus/compose/rules/dr.rules.yml'),
      'prometheus/compose/rules/dr.rules.yml is stale: regenerate it with the command at the top of config/compose.yaml',
    );
  });
});

describe('Prometheus, Alertmanager and Grafana of the stack', () => {
  test('promtool and amtool accept the configs', () => {
    const promtool = requireTool('promtool', 'apt-get install -y --no-install-recommends prometheus');
    const amtool = requireTool('amtool', 'apt-get install -y --no-install-recommends prometheus-alertmanager');
    const p = spawnSync(promtool, ['check', 'config', fromRoot('prometheus/compose/prometheus.yml')], { encoding: 'utf8' });
    assert.equal(p.status, 0, `promtool check config:\n${p.stdout}${p.stderr}`);
    const a = spawnSync(amtool, ['check-config', fromRoot('prometheus/compose/alertmanager.yml')], { encoding: 'utf8' });
    assert.equal(a.status, 0, `amtool check-config:\n${a.stdout}${a.stderr}`);
  });

  test('they reach each other by compose service names and the ports those listen on', () => {
    const prom = parse(text('prometheus/compose/prometheus.yml')) as {
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
      alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
    };
    assert.deepEqual(prom.scrape_configs[0]!.static_configs[0]!.targets, SIDECARS.map((s) => `${s}:9898`));
    assert.deepEqual(prom.alerting.alertmanagers[0]!.static_configs[0]!.targets, ['alertmanager:9093']);
    const am = parse(text('prometheus/compose/alertmanager.yml')) as {
      receivers: Array<{ webhook_configs: Array<{ url: string; http_config: { authorization: { credentials_file: string } } }> }>;
    };
    const webhook = am.receivers[0]!.webhook_configs[0]!;
    assert.deepEqual(am.receivers[0]!.webhook_configs.map((w) => w.url), SIDECARS.map((s) => `http://${s}:9898/alertmanager/webhook`));
    for (const w of am.receivers[0]!.webhook_configs) assert.deepEqual(w.http_config, webhook.http_config);
    const alertmanager = [rawCompose().services.alertmanager!.command].flat().join('\n');
    assert.ok(alertmanager.includes(`> ${webhook.http_config.authorization.credentials_file}`), 'the alertmanager service writes the token file the config reads');
    const ds = parse(text('grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ url: string }> };
    assert.equal(ds.datasources[0]!.url, 'http://prometheus:9090');
  });

  test('Grafana mounts its provisioning and the dashboards where the provider looks', () => {
    const grafana = resolvedCompose().services.grafana!;
    const mounts = bindMounts(grafana);
    assert.equal(mounts.get('/etc/grafana/provisioning'), 'grafana/provisioning');
    const provider = parse(text('grafana/provisioning/dashboards/dashboards.yml')) as { providers: Array<{ options: { path: string } }> };
    assert.equal(mounts.get(provider.providers[0]!.options.path), 'grafana/dashboards');
    const home = grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    assert.ok(home.startsWith(`${provider.providers[0]!.options.path}/`));
    assert.ok(fs.existsSync(fromRoot('grafana/dashboards', path.basename(home))), `home dashboard ${home} is not generated`);
  });

  test('Prometheus mounts its config and the generated rules', () => {
    const prometheus = resolvedCompose().services.prometheus!;
    const mounts = bindMounts(prometheus);
    assert.equal(mounts.get('/etc/prometheus/prometheus.yml'), 'prometheus/compose/prometheus.yml');
    assert.equal(mounts.get('/etc/prometheus/rules'), 'prometheus/compose/rules');
  });
});
