import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { DatabaseUrlError, maskDatabaseUrl, parseDatabaseUrl, type DatabaseTarget } from './database-url.js';
import { nameProblem } from '../names.js';
import { expandEnvDeep } from './env.js';
import { configSchema, type RawConfig } from './schema.js';

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

export type PinoLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface Config {
  /** Absolute path of the file this came from. */
  file: string;
  enabled: boolean;
  /** Every configured database, enabled or not, by priority. */
  databases: DatabaseConfig[];
  backup: RawConfig['disaster_recovery']['backup'] & { backup_dir: string };
  failover: RawConfig['disaster_recovery']['failover'];
  monitoring: RawConfig['disaster_recovery']['monitoring'];
  notifications: RawConfig['disaster_recovery']['notifications'];
  server: RawConfig['server'];
  state: { path: string };
  logging: { level: PinoLevel; file: string | undefined };
  /** Every secret the file holds (passwords, the API token): scrubbed from anything shown. */
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
  if (problems.length > 0) throw new ConfigError(file, problems);

  const dr = raw.disaster_recovery;
  const token = raw.server.auth_token?.trim() || undefined;
  return {
    file,
    enabled: dr.enabled,
    databases,
    backup: { ...dr.backup, backup_dir: path.resolve(cwd, dr.backup.backup_dir) },
    failover: dr.failover,
    monitoring: dr.monitoring,
    notifications: dr.notifications,
    server: { ...raw.server, auth_token: token },
    state: { path: path.resolve(cwd, raw.state.path) },
    logging: {
      level: raw.debug ? 'debug' : pinoLevel(raw.logging.level),
      file: raw.logging.file ? path.resolve(cwd, raw.logging.file) : undefined,
    },
    secrets: collectSecrets(databases, token),
  };
}

function buildDatabases(raw: RawConfig, cwd: string, problems: string[]): DatabaseConfig[] {
  const where = 'disaster_recovery.databases';
  const databases: DatabaseConfig[] = [];
  const names = new Map<string, string>();
  const priorities = new Map<number, string>();
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
  const keys: Record<string, string> = { server: 'host, port, auth_token', state: 'path' };
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

function collectSecrets(databases: DatabaseConfig[], token: string | undefined): string[] {
  const secrets = new Set<string>();
  for (const db of databases) {
    if (db.target.engine === 'postgresql' && db.target.password) {
      secrets.add(db.target.password);
      secrets.add(encodeURIComponent(db.target.password));
    }
  }
  if (token) secrets.add(token);
  return [...secrets].filter((s) => s.length > 0);
}

/** Replaces every secret in `text` by `***`. Applied to everything the sidecar shows that it did not write itself. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}
