import { z } from 'zod';
import { cronProblem } from '../drill/cron.js';

/** Values that came from `${VAR}` are strings: numbers and booleans are read from them. */
const numberFromString = (v: unknown) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v);
const booleanFromString = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);

const positive = () =>
  z.preprocess(numberFromString, z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }));
const nonNegative = () =>
  z.preprocess(numberFromString, z.number({ error: 'expected a number >= 0' }).min(0, { error: 'expected a number >= 0' }));
const positiveInt = () =>
  z.preprocess(
    numberFromString,
    z.number({ error: 'expected a positive whole number' }).int({ error: 'expected a positive whole number' }).positive({ error: 'expected a positive whole number' }),
  );
const nonNegativeInt = () =>
  z.preprocess(
    numberFromString,
    z.number({ error: 'expected a whole number >= 0' }).int({ error: 'expected a whole number >= 0' }).min(0, { error: 'expected a whole number >= 0' }),
  );
const bool = () => z.preprocess(booleanFromString, z.boolean({ error: 'expected true or false' }));
const text = () => z.string({ error: 'expected a string' });

export const DATABASE_TYPES = ['primary', 'secondary'] as const;
export const ALERT_METRICS = ['response_time', 'connection_count', 'error_count'] as const;
export const ALERT_OPERATORS = ['>', '>=', '<', '<=', '==', '!='] as const;
export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export const ALERT_ACTIONS = ['failover', 'backup', 'none'] as const;

const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.map((v) => `"${v}"`).join(', ')}` });

export const databaseSchema = z.strictObject({
  /** Defaults to the key under `databases`. */
  name: text().min(1, { error: 'must not be empty' }).optional(),
  type: oneOf(DATABASE_TYPES),
  /** Lower is preferred, as the guide's priorities read (primary 0, secondary1 1, ...). */
  priority: nonNegativeInt(),
  url: text().min(1, { error: 'must not be empty' }),
  enabled: bool().default(true),
});

export const OFFSITE_TYPES = ['s3'] as const;

/** An extra place every final file of `backup_dir` is copied to (see src/backup/offsite.ts). */
export const offsiteSchema = z.strictObject({
  type: oneOf(OFFSITE_TYPES),
  /** Any S3-compatible service; unset: AWS S3 of `region`. */
  endpoint: text().url({ error: 'expected an http(s) URL of the S3-compatible service' }).optional(),
  bucket: text().min(3, { error: 'expected a bucket name (at least 3 characters)' }),
  prefix: text().default(''),
  region: text().min(1, { error: 'must not be empty' }).default('us-east-1'),
  access_key_id: text().min(1, { error: 'must not be empty' }),
  secret_access_key: text().min(1, { error: 'must not be empty' }),
  force_path_style: bool().default(false),
});

export const backupSchema = z.strictObject({
  backup_dir: text().default('backups'),
  enable_auto_backup: bool().default(true),
  backup_interval: positive().default(3600),
  max_backups: positiveInt().default(10),
  retention_days: positive().default(30),
  enable_compression: bool().default(true),
  /** Addition: continuous archiving, for restores to any moment (`restore --to-time`). */
  archive: z
    .strictObject({
      enabled: bool().default(false),
      /** Seconds: a quiet PostgreSQL primary's commits reach a finished archived segment within this (pg_switch_wal). */
      segment_interval: positive().default(60),
      /** MB of WAL the sidecar's replication slot may make a primary keep (max_slot_wal_keep_size); past it the slot is dropped. */
      max_slot_wal_keep_mb: positiveInt().default(1024),
      /** Seconds between two SQLite snapshots (each starts a generation; retention removes whole generations). */
      snapshot_interval: positive().default(86400),
    })
    .prefault({}),
  /** Addition: offsite destinations, each receiving everything `backup_dir` receives. */
  offsite: z.array(offsiteSchema, { error: 'expected a list of destinations' }).default([]),
});

export const failoverSchema = z.strictObject({
  enable_auto_failover: bool().default(true),
  health_check_interval: positive().default(30),
  detection_threshold: positiveInt().default(3),
  max_retry_attempts: positiveInt().default(3),
  retry_delay: nonNegative().default(5),
  notification_enabled: bool().default(true),
  /** Additions (seconds). */
  max_lag_on_failover: nonNegative().optional(),
  sync_interval: positive().default(1),
  cooldown: nonNegative().default(300),
  pre_promote: text().optional(),
});

export const alertRuleSchema = z.strictObject({
  enabled: bool().default(true),
  metric: oneOf(ALERT_METRICS),
  operator: oneOf(ALERT_OPERATORS),
  /** In the guide's units: response_time in milliseconds, counts as counts. */
  threshold: z.preprocess(numberFromString, z.number({ error: 'expected a number' })),
  severity: oneOf(SEVERITIES).default('warning'),
  /** Seconds the condition must hold (error_count: the window the errors are counted over). */
  duration: nonNegative().optional(),
  /** Addition: what the sidecar does when Alertmanager delivers this alert. */
  action: oneOf(ALERT_ACTIONS).optional(),
});

export const monitoringSchema = z.strictObject({
  enable_health_monitoring: bool().default(true),
  check_interval: positive().default(30),
  history_retention_hours: positive().default(24),
  /**
   * Addition: seconds one probe may take before the database counts as down.
   * Default: derived from the response_time rules (config/probe-timeout.ts).
   */
  probe_timeout: positive().optional(),
  /** Addition: seconds between PRAGMA quick_check runs of each SQLite file (0: never). */
  integrity_check_interval: nonNegative().default(300),
  alert_rules: z.record(z.string(), alertRuleSchema).default({}),
});

export const notificationsSchema = z.strictObject({
  webhooks: z.array(text().url({ error: 'expected an http(s) URL' })).default([]),
  timeout: positive().default(5),
});

/** Addition: drills (the guide's 定期测试): a switchover there and back, and a restore of the newest backup. */
export const drillSchema = z.strictObject({
  /** A cron expression (5 fields, node-schedule); absent: drills run only on request. */
  schedule: text()
    .superRefine((value, ctx) => {
      const problem = cronProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

export const disasterRecoverySchema = z.strictObject({
  enabled: bool().default(false),
  databases: z.record(z.string(), databaseSchema, { error: 'expected a map of database name to its settings' }),
  backup: backupSchema.prefault({}),
  failover: failoverSchema.prefault({}),
  monitoring: monitoringSchema.prefault({}),
  notifications: notificationsSchema.prefault({}),
  drill: drillSchema.prefault({}),
});

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'warning', 'error', 'critical', 'fatal', 'silent'] as const;

export const serverSchema = z.strictObject({
  host: text().default('127.0.0.1'),
  port: z.preprocess(
    numberFromString,
    z.number({ error: 'expected a port number' }).int({ error: 'expected a port number' }).min(0, { error: 'expected a port number' }).max(65535, { error: 'expected a port number <= 65535' }),
  ).default(9898),
  /** Bearer token for POST and /api/* routes; when empty those routes are refused. */
  auth_token: text().optional(),
  /** `GET /` (the status page) and `GET /status.json` (its data), served without a token; false: 404. */
  status_page: bool().default(true),
});

export const STATE_BACKENDS = ['sqlite', 'etcd'] as const;

/** A list, or (from `${VAR}`) one string of comma-separated URLs. */
const urlList = () =>
  z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
    z.array(text().min(1, { error: 'must not be empty' }), { error: 'expected a list of URLs' }).min(1, { error: 'expected at least one URL' }),
  );

export const etcdStateSchema = z.strictObject({
  /** Required when `state.backend` is etcd (checked in load.ts, where the backend is known). */
  endpoints: urlList().optional(),
  prefix: text().min(1, { error: 'must not be empty' }).default('/dr-sidecar/'),
  /** Seconds of the leader lease; etcd's shortest lease is 2 s. */
  ttl: z.preprocess(
    numberFromString,
    z.number({ error: 'expected a whole number of seconds >= 2' }).int({ error: 'expected a whole number of seconds >= 2' }).min(2, { error: "expected a whole number of seconds >= 2 (etcd's shortest lease)" }),
  ).default(10),
  /** This sidecar's name among the members; default `<hostname>:<server.port>`. */
  member: text().min(1, { error: 'must not be empty' }).optional(),
});

export const stateSchema = z.strictObject({
  path: text().default('data/dr-state.db'),
  backend: oneOf(STATE_BACKENDS).default('sqlite'),
  etcd: etcdStateSchema.prefault({}),
});

export const loggingSchema = z
  .object({
    level: z.preprocess((v) => (typeof v === 'string' ? v.toLowerCase() : v), oneOf(LOG_LEVELS)).default('info'),
    /** Addition: also append the log lines to this file. */
    file: text().optional(),
  })
  .loose();

/**
 * The whole file. Unknown top-level sections are kept: the file is usually the
 * application's own config.yaml, of which `disaster_recovery` is one section.
 */
export const configSchema = z
  .object({
    debug: bool().default(false),
    logging: loggingSchema.prefault({}),
    server: serverSchema.prefault({}),
    state: stateSchema.prefault({}),
    disaster_recovery: disasterRecoverySchema,
  })
  .loose();

export type RawConfig = z.infer<typeof configSchema>;
export type DatabaseSettings = z.infer<typeof databaseSchema>;
export type AlertRule = z.infer<typeof alertRuleSchema>;
export type OffsiteSettings = z.infer<typeof offsiteSchema>;
