import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { stateLocationProblem } from '../state/location.js';
import { DatabaseUrlError, maskDatabaseUrl, parseDatabaseUrl, type DatabaseTarget } from './database-url.js';
import { nameProblem } from '../names.js';
import { expandEnvDeep } from './env.js';
import { defaultProbeTimeout, probeTimeoutProblems } from './probe-timeout.js';
import { authTokenProblem, safetyNetSecrets, webhookTarget } from './secrets.js';
import { configSchema, type OffsiteSettings, type RawConfig } from './schema.js';
import { s3StorageName } from '../storage/s3-name.js';
import { Topology } from '../topology.js';

export { scrubSecrets } from './secrets.js';

export const DEFAULT_CONFIG_PATH = 'config/config.yaml';

export interface DatabaseConfig {
  /** Identifier used everywhere (CLI, metrics label, history): `name`, or the key under `databases`. */
  name: string;
  type: 'primary' | 'secondary';
  priority: number;
  enabled: boolean;
  /** The URL with its password: only for the engine, never shown. */
  url: string;
  /** The URL with the password masked: what status, logs and the API show. */
  displayUrl: string;
  target: DatabaseTarget;
}

/** Where the cluster state lives: `path` is the SQLite store's file; `etcd` is set when the backend is etcd. */
export interface StateConfig {
  /** The SQLite store's absolute path. */
  path: string;
  /** The working directory a relative state.path was resolved against (undefined: it was absolute). */
  relativeTo: string | undefined;
  backend: 'sqlite' | 'etcd';
  etcd: EtcdStateConfig | undefined;
}

export interface EtcdStateConfig {
  /** With credentials, if the file gave any: for the client only, never shown. */
  endpoints: string[];
  /** The endpoints with passwords masked: what status, logs and errors show. */
  displayEndpoints: string[];
  /** Ends with "/". */
  prefix: string;
  /** Seconds of the leader lease. */
  ttl: number;
  /** This sidecar's name among the members. */
  member: string;
}

export type PinoLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface Config {
  /** Absolute path of the file this came from. */
  file: string;
  enabled: boolean;
  /** Every configured database, enabled or not, by priority. */
  databases: DatabaseConfig[];
  /** The same databases, asked by name or role: use this rather than searching `databases`. */
  topology: Topology;
  backup: RawConfig['disaster_recovery']['backup'] & { backup_dir: string };
  failover: RawConfig['disaster_recovery']['failover'];
  /** probe_timeout: the configured value, else the default its response_time rules leave room for. */
  monitoring: Omit<RawConfig['disaster_recovery']['monitoring'], 'probe_timeout'> & { probe_timeout: number };
  notifications: RawConfig['disaster_recovery']['notifications'];
  server: RawConfig['server'];
  state: StateConfig;
  logging: { level: PinoLevel; file: string | undefined };
  /** The secrets long enough for the last safety net (see secrets.ts); shorter ones are masked where formatted only. */
  secrets: string[];
}

/** The config path a command uses: the flag, else `$DR_CONFIG`, else `config/config.yaml`. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.DR_CONFIG ?? DEFAULT_CONFIG_PATH);
}

/** Reads, expands and validates a config file; throws ConfigError listing every problem by its path. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Config {
  const absolute = path.resolve(cwd, file);
  let text: string;
  try {
    text = fs.readFileSync(absolute, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new ConfigError(absolute, [`cannot read ${absolute}: ${why}`]);
  }
  return parseConfig(text, absolute, env, cwd);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Config {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    // Only the first: the errors after it are usually echoes of the same mistake.
    const first = doc.errors[0]!;
    const at = first.linePos?.[0];
    const what = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(file, [`YAML syntax error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${what}`]);
  }
  const problems: string[] = [];
  const expanded = expandEnvDeep(doc.toJS() ?? {}, env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);

  const parsed = configSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map((issue) => describeIssue(issue, expanded)));
  const raw = parsed.data;

  const databases = buildDatabases(raw, cwd, problems);
  const token = raw.server.auth_token?.trim() || undefined;
  const tokenProblem = authTokenProblem(token);
  if (tokenProblem) problems.push(tokenProblem);
  const dr = raw.disaster_recovery;
  const { probe_timeout: explicitTimeout, alert_rules: rules } = dr.monitoring;
  if (explicitTimeout !== undefined) problems.push(...probeTimeoutProblems(explicitTimeout, rules));
  const state = buildState(raw, cwd, problems);
  problems.push(...offsiteProblems(dr.backup.offsite));
  if (problems.length > 0) throw new ConfigError(file, problems);

  return {
    file,
    enabled: dr.enabled,
    databases,
    topology: new Topology(databases),
    backup: { ...dr.backup, backup_dir: path.resolve(cwd, dr.backup.backup_dir) },
    failover: dr.failover,
    monitoring: { ...dr.monitoring, probe_timeout: explicitTimeout ?? defaultProbeTimeout(rules) },
    notifications: dr.notifications,
    server: { ...raw.server, auth_token: token },
    state,
    logging: {
      level: raw.debug ? 'debug' : pinoLevel(raw.logging.level),
      file: raw.logging.file ? path.resolve(cwd, raw.logging.file) : undefined,
    },
    secrets: collectSecrets(databases, token, dr.notifications.webhooks, state.etcd?.endpoints ?? [], dr.backup.offsite),
  };
}

function buildDatabases(raw: RawConfig, cwd: string, problems: string[]): DatabaseConfig[] {
  const where = 'disaster_recovery.databases';
  const databases: DatabaseConfig[] = [];
  const names = new Map<string, string>();
  const priorities = new Map<number, string>();
  const identities = new Map<string, string>();
  for (const [key, db] of Object.entries(raw.disaster_recovery.databases)) {
    const name = db.name ?? key;
    const badName = nameProblem(name);
    if (badName) problems.push(`${where}.${key}.name: ${JSON.stringify(name)} ${badName}`);
    const sameName = names.get(name);
    if (sameName) problems.push(`${where}.${key}.name: "${name}" is also the name of ${where}.${sameName}`);
    names.set(name, key);
    const samePriority = priorities.get(db.priority);
    if (samePriority) {
      problems.push(`${where}.${key}.priority: ${db.priority} is also the priority of ${where}.${samePriority}; priorities must be unique`);
    }
    priorities.set(db.priority, key);
    let target: DatabaseTarget;
    try {
      target = parseDatabaseUrl(db.url, cwd);
    } catch (error) {
      if (!(error instanceof DatabaseUrlError)) throw error;
      problems.push(`${where}.${key}.url: ${error.message}`);
      continue;
    }
    const identity = databaseIdentity(target);
    const sameDatabase = identities.get(identity);
    if (sameDatabase) {
      problems.push(
        `${where}.${key}.url: is the same database as ${where}.${sameDatabase}.url (${describeIdentity(target)}); ` +
          'one database cannot be its own secondary: a failover between them would fence the data it promotes',
      );
    }
    identities.set(identity, key);
    databases.push({ name, type: db.type, priority: db.priority, enabled: db.enabled, url: db.url, displayUrl: maskDatabaseUrl(db.url), target });
  }
  const enabled = databases.filter((d) => d.enabled);
  const primaries = enabled.filter((d) => d.type === 'primary');
  if (Object.keys(raw.disaster_recovery.databases).length === 0) problems.push(`${where}: no database is configured`);
  else if (primaries.length === 0 && problems.length === 0) problems.push(`${where}: no enabled database has type "primary"`);
  if (primaries.length > 1) {
    problems.push(`${where}: ${primaries.map((d) => `"${d.name}"`).join(' and ')} both have type "primary"; exactly one may`);
  }
  return databases.sort((a, b) => a.priority - b.priority);
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

/**
 * What makes two entries one database: for PostgreSQL the server (host without case,
 * the loopback names as one host, port) and the database name; for SQLite the file
 * after resolving `..` and symbolic links (of its folder, when the file does not exist yet).
 */
function databaseIdentity(target: DatabaseTarget): string {
  if (target.engine === 'sqlite') return `sqlite:${realFile(target.file)}`;
  const host = target.host.toLowerCase().replace(/\.$/, '');
  return `postgresql:${LOOPBACK.has(host) ? 'localhost' : host}:${target.port}/${target.database}`;
}

function describeIdentity(target: DatabaseTarget): string {
  if (target.engine === 'sqlite') return `the file ${realFile(target.file)}`;
  return `database ${target.database} on ${target.host}:${target.port}`;
}

function realFile(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    try {
      return path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
    } catch {
      return path.resolve(file);
    }
  }
}

function buildState(raw: RawConfig, cwd: string, problems: string[]): StateConfig {
  const { backend, etcd } = raw.state;
  const statePath = path.resolve(cwd, raw.state.path);
  const relativeTo = path.isAbsolute(raw.state.path) ? undefined : cwd;
  if (backend !== 'etcd') {
    const stateProblem = stateLocationProblem(statePath);
    if (stateProblem) problems.push(`state.path: ${statePath} ${stateProblem}`);
    return { path: statePath, relativeTo, backend, etcd: undefined };
  }
  if (!etcd.endpoints) {
    problems.push('state.etcd.endpoints: is required when state.backend is "etcd" (a list of the etcd members\' client URLs, e.g. http://10.0.0.1:2379)');
    return { path: statePath, relativeTo, backend, etcd: undefined };
  }
  etcd.endpoints.forEach((url, i) => {
    const why = endpointProblem(url);
    if (why) problems.push(`state.etcd.endpoints.${i}: ${why} (got "${maskDatabaseUrl(url)}")`);
  });
  return {
    path: statePath,
    relativeTo,
    backend,
    etcd: {
      endpoints: etcd.endpoints,
      displayEndpoints: etcd.endpoints.map(maskDatabaseUrl),
      prefix: etcd.prefix.endsWith('/') ? etcd.prefix : `${etcd.prefix}/`,
      ttl: etcd.ttl,
      member: etcd.member ?? `${os.hostname()}:${raw.server.port}`,
    },
  };
}

function endpointProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected an http:// or https:// URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected an http:// or https:// URL';
  if (u.pathname !== '/' || u.search || u.hash) return 'expected a URL without a path (etcd serves its API at the root)';
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const at = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    return `${at}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}${sidecarSectionHint(at)}`;
  }
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) return `${at}: is required`;
  return `${at}: ${issue.message}`;
}

/**
 * `server:` and `state:` are the sidecar's own top-level sections in a file that is
 * usually the application's: an application with a `server:` of its own collides.
 */
function sidecarSectionHint(at: string): string {
  const keys: Record<string, string> = { server: 'host, port, auth_token, status_page', state: 'path' };
  if (!(at in keys)) return '';
  return (
    ` (${at}: is the sidecar's own section and holds only ${keys[at]}; if this is your application's ${at}: section, ` +
    'give the sidecar a config file of its own with the disaster_recovery: block and its own server: and state:)'
  );
}

function valueAt(input: unknown, at: PropertyKey[]): unknown {
  let node = input;
  for (const key of at) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function pinoLevel(level: string): PinoLevel {
  if (level === 'warning') return 'warn';
  if (level === 'critical') return 'fatal';
  return level as PinoLevel;
}

function collectSecrets(
  databases: DatabaseConfig[],
  token: string | undefined,
  webhooks: readonly string[],
  etcdEndpoints: readonly string[],
  offsite: readonly OffsiteSettings[],
): string[] {
  const passwords = databases.map((db) => (db.target.engine === 'postgresql' ? db.target.password : undefined));
  const etcdPasswords = etcdEndpoints.map((url) => (URL.canParse(url) ? decodeURIComponent(new URL(url).password) : undefined));
  // S3 keys are like passwords: never formatted (a destination is named s3://bucket/prefix), and in the safety net.
  const s3Keys = offsite.flatMap((d) => [d.secret_access_key, d.access_key_id]);
  return safetyNetSecrets([...passwords, token, ...webhooks.flatMap((url) => webhookTarget(url).secrets), ...etcdPasswords, ...s3Keys]);
}

/** Two destinations of one bucket and prefix would share (and fight over) one set of objects and one index. */
function offsiteProblems(offsite: readonly OffsiteSettings[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  offsite.forEach((d, i) => {
    const name = s3StorageName(d.bucket, d.prefix);
    const same = seen.get(name);
    if (same !== undefined) problems.push(`disaster_recovery.backup.offsite.${i}: is the same destination as disaster_recovery.backup.offsite.${same} (${name})`);
    seen.set(name, i);
  });
  return problems;
}
