/**
 * The status page's data: what `GET /status.json` serves and `GET /` renders,
 * built from the same StatusReport as `/api/status` plus the journal (history,
 * alert records) and the backup catalogue. These two routes need no token (as
 * /metrics), so the report is projected onto what a person watching the
 * cluster needs, leaving out what /api/status keeps behind its token: database
 * URLs (host, port, user), file paths (config, state store, backups), the lease
 * holder's process and the members' raw views. Passwords are masked in the
 * report already; nothing here depends on that.
 */
import { sumRows } from '../drill/drill-record.js';
import { failoverRecordJson, type FailoverRecordJson } from '../failover/history.js';
import type { AlertRecord, FailoverRecord } from '../state/store.js';
import type { RestoreWindowStatus } from '../backup/restore-window-cache.js';
import type { DatabaseStatus, StatusReport } from '../status.js';
import type { OffsiteStatus } from '../backup/offsite-status.js';

export interface StatusPageDatabase {
  name: string;
  type: 'primary' | 'secondary';
  engine: 'sqlite' | 'postgresql';
  priority: number;
  enabled: boolean;
  is_primary: boolean;
  demoted: boolean;
  demoted_note: string | null;
  status: DatabaseStatus['status'];
  read_only: boolean | null;
  in_recovery: boolean | null;
  response_time_seconds: number | null;
  replication_lag_seconds: number | null;
  size_bytes: number | null;
  connections: number | null;
  consecutive_failures: number;
  checked_at: string | null;
  error: string | null;
  replication_warning: string | null;
  /** Share of the probes of the retained history that found it up, 0..1. */
  availability: number | null;
  /** Fields the status gained after this page was written (shown as they are, secret-shaped keys left out). */
  extra: Record<string, unknown>;
}

/** The newest good backup of one database. */
export interface StatusPageBackup {
  database: string;
  name: string;
  trigger: string;
  created_at: string;
  finished_at: string;
  size_bytes: number;
  duration_seconds: number | null;
  /** The last `verify`: true, false, or null when never verified. */
  verified: boolean | null;
  verified_at: string | null;
  /** What the manifest or the status says beyond these (offsite copies, restore windows...). */
  extra: Record<string, unknown>;
}

/** One `backup.offsite` destination, as `status` reports it (its name is `s3://bucket/prefix`: no endpoint, no key). */
export interface StatusPageOffsite {
  destination: string;
  offsite_files: number;
  pending_files: number;
  /** The oldest few pending keys: what goes next. */
  next: string[];
  last_arrived: { key: string; at: string } | null;
  last_success_at: string | null;
  /** The last failed pass; null once a pass succeeds. */
  last_error: { message: string; at: string } | null;
}

export interface StatusPageAlert {
  received_at: string;
  alertname: string;
  database: string | null;
  status: 'firing' | 'resolved';
  action: string;
  outcome: string;
  why: string;
  result: string | null;
}

export interface StatusPageMember {
  name: string;
  leader: boolean;
  last_heartbeat: string;
  /** Each database as that member last saw it: up, down or unknown. */
  sees: Record<string, string>;
}

export interface StatusPageCluster {
  backend: 'sqlite' | 'etcd';
  member: string | null;
  is_leader: boolean;
  leader: string | null;
  lease_expires_at: string | null;
  cut_off: string | null;
  members: StatusPageMember[];
}

export interface StatusPageData {
  generated_at: string;
  enabled: boolean;
  primary: string | null;
  epoch: number;
  auto_failover: StatusReport['auto_failover'];
  state_problem: string | null;
  databases: StatusPageDatabase[];
  /** Failovers and switchovers, newest first. */
  failovers: FailoverRecordJson[];
  /** Drills (history entries carrying a drill report), newest first; their own switchovers are among the failovers. */
  drills: StatusPageDrill[];
  backups: StatusPageBackup[];
  /** Per offsite destination, in config order; empty without `backup.offsite`. */
  offsite: StatusPageOffsite[];
  alerts: StatusPageAlert[];
  cluster: StatusPageCluster;
  /** Per database, the moments `restore --to-time` can restore into (as last computed); null while archiving is off. */
  restore_windows: RestoreWindowStatus[] | null;
  /** Why the history or the alert records could not be read just now (the rest of the page still is). */
  journal_problem: string | null;
  /** Top-level status fields this page does not know by name (shown as they are, secret-shaped keys left out). */
  extra: Record<string, unknown>;
}

/** One drill as the page shows it: what it proved and its figures, no paths. */
export interface StatusPageDrill {
  id: number;
  started_at: string;
  finished_at: string;
  kind: string;
  result: string;
  detail: string;
  requested_by: string;
  /** Seconds the drill's probe writer could not commit, each way (switchover drills). */
  outage_there_seconds: number | null;
  outage_back_seconds: number | null;
  /** Rows compared: before and after the switchover, or in the restored backup. */
  rows_checked: number | null;
  /** The primary the cluster ended on (switchover drills). */
  ended_on: string | null;
}

/** What the page reads besides the status report. */
export interface StatusPageJournal {
  history: FailoverRecord[];
  alerts: AlertRecord[];
  /** The newest good backup of each enabled database that has one, as the catalogue holds it (manifest + path). */
  backups: Array<Record<string, unknown>>;
  /** Set when the history or the alerts could not be read (then empty). */
  problem?: string | null;
}

/** How many entries of each list the page shows. */
export const PAGE_LIMITS = { failovers: 10, drills: 10, alerts: 20, history: 100 } as const;

const REPORT_KEYS = new Set(['enabled', 'config', 'state_store', 'primary', 'epoch', 'auto_failover', 'last_backup', 'offsite', 'databases', 'cluster', 'restore_windows']);
const DATABASE_KEYS = new Set([
  'name', 'type', 'priority', 'engine', 'url', 'enabled', 'is_primary', 'demoted', 'demoted_note', 'status', 'response_time_seconds',
  'size_bytes', 'connections', 'in_recovery', 'read_only', 'replication_lag_seconds', 'replication_warning', 'consecutive_failures',
  'error_count', 'error', 'last_error', 'checked_at', 'history',
]);
const HISTORY_KEYS = new Set(['id', 'epoch', 'started_at', 'finished_at', 'from', 'to', 'trigger', 'reason', 'result', 'error', 'data_sync', 'phases', 'former_primary']);
/** FailoverRecord's own fields (camelCase), which its JSON form shows by name. */
const RECORD_KEYS = new Set(['id', 'epoch', 'startedAt', 'finishedAt', 'from', 'to', 'trigger', 'reason', 'result', 'error', 'dataSync', 'phases', 'formerPrimary']);
/** Manifest fields shown by name, or left out on purpose (paths, the source URL, checksums, row counts). */
const BACKUP_KEYS = new Set([
  'version', 'file', 'path', 'database', 'engine', 'format', 'compression', 'compression_level', 'name', 'trigger', 'created_at',
  'finished_at', 'duration_seconds', 'size_bytes', 'sha256', 'source', 'tables', 'verification', 'verified',
]);
/** Keys whose values a token-less page never shows, whatever section they turn up in later. */
const PRIVATE_KEY = /pass(word)?|secret|token|credential|authori[sz]ation|private|access_key|key_id|(^|_)(url|uri|endpoint|path|file|dir|config|view|holder)s?$/i;

export function statusPageData(report: StatusReport, journal: StatusPageJournal, now: Date): StatusPageData {
  return {
    generated_at: now.toISOString(),
    enabled: report.enabled,
    primary: report.primary,
    epoch: report.epoch,
    auto_failover: { enabled: report.auto_failover.enabled, source: report.auto_failover.source, held: report.auto_failover.held },
    state_problem: report.state_store.problem,
    databases: report.databases.map(pageDatabase),
    failovers: journal.history.filter((r) => !r.drill).map(pageHistoryEntry).slice(0, PAGE_LIMITS.failovers),
    drills: journal.history.filter((r) => r.drill).map(pageDrill).slice(0, PAGE_LIMITS.drills),
    backups: journal.backups.map((b) => pageBackup(b, report.last_backup as unknown as Record<string, unknown> | null)),
    offsite: (report.offsite ?? []).map(pageOffsite),
    alerts: journal.alerts.slice(0, PAGE_LIMITS.alerts).map(pageAlert),
    cluster: pageCluster(report.cluster),
    restore_windows: report.restore_windows?.map(pageWindow) ?? null,
    journal_problem: journal.problem ?? null,
    extra: extraOf(report as unknown as Record<string, unknown>, REPORT_KEYS),
  };
}

/**
 * A history entry as /api/history shows it. Fields added later (a drill's figures), whether in the
 * record or in its JSON form, pass through the same filter as every other field this page does not know.
 */
function pageHistoryEntry(record: FailoverRecord): FailoverRecordJson {
  const json = failoverRecordJson(record) as unknown as Record<string, unknown>;
  const known: Record<string, unknown> = {};
  for (const key of HISTORY_KEYS) if (key in json) known[key] = json[key];
  return {
    ...extraOf(record as unknown as Record<string, unknown>, RECORD_KEYS),
    ...extraOf(json, HISTORY_KEYS),
    ...known,
  } as unknown as FailoverRecordJson;
}

function pageDrill(record: FailoverRecord): StatusPageDrill {
  const drill = record.drill!;
  const switchover = drill.switchover;
  return {
    id: record.id ?? 0,
    started_at: record.startedAt,
    finished_at: record.finishedAt,
    kind: drill.kind,
    result: drill.result,
    detail: drill.detail,
    requested_by: drill.requestedBy,
    outage_there_seconds: switchover?.outageThereSeconds ?? null,
    outage_back_seconds: switchover?.outageBackSeconds ?? null,
    rows_checked: switchover ? sumRows(switchover.rowsBefore) : (drill.restore?.rowsChecked ?? null),
    ended_on: switchover?.endedOn ?? null,
  };
}

function pageDatabase(d: DatabaseStatus): StatusPageDatabase {
  return {
    name: d.name,
    type: d.type,
    engine: d.engine,
    priority: d.priority,
    enabled: d.enabled,
    is_primary: d.is_primary,
    demoted: d.demoted,
    demoted_note: d.demoted_note,
    status: d.status,
    read_only: d.read_only,
    in_recovery: d.in_recovery,
    response_time_seconds: d.response_time_seconds,
    replication_lag_seconds: d.replication_lag_seconds,
    size_bytes: d.size_bytes,
    connections: d.connections,
    consecutive_failures: d.consecutive_failures,
    checked_at: d.checked_at,
    error: d.error,
    replication_warning: d.replication_warning,
    availability: d.history?.availability ?? null,
    extra: extraOf(d as unknown as Record<string, unknown>, DATABASE_KEYS),
  };
}

function pageBackup(b: Record<string, unknown>, last: Record<string, unknown> | null): StatusPageBackup {
  const verification = b.verification as { ok?: boolean; at?: string } | undefined;
  // The status's newest backup may carry fields of its own (offsite copies...) for the same file.
  const same = last && last.database === b.database && last.name === b.name && last.created_at === b.created_at;
  return {
    database: String(b.database),
    name: String(b.name),
    trigger: String(b.trigger),
    created_at: String(b.created_at),
    finished_at: String(b.finished_at),
    size_bytes: Number(b.size_bytes),
    duration_seconds: typeof b.duration_seconds === 'number' ? b.duration_seconds : null,
    verified: typeof verification?.ok === 'boolean' ? verification.ok : null,
    verified_at: verification?.at ?? null,
    extra: { ...extraOf(b, BACKUP_KEYS), ...(same ? extraOf(last, BACKUP_KEYS) : {}) },
  };
}

function pageWindow(w: RestoreWindowStatus): RestoreWindowStatus {
  return {
    database: w.database,
    engine: w.engine,
    ranges: w.ranges.map((r) => ({ from: r.from, to: r.to })),
    gaps: w.gaps.map((g) => ({ from: g.from, to: g.to, reason: g.reason })),
    computed_at: w.computed_at,
  };
}

function pageAlert(a: AlertRecord): StatusPageAlert {
  return {
    received_at: a.receivedAt,
    alertname: a.alertname,
    database: a.database,
    status: a.status,
    action: a.action,
    outcome: a.outcome,
    why: a.why,
    result: a.result,
  };
}

function pageCluster(c: StatusReport['cluster']): StatusPageCluster {
  return {
    backend: c.backend,
    member: c.member,
    is_leader: c.is_leader,
    leader: c.leader,
    lease_expires_at: c.lease?.expires_at ?? null,
    cut_off: c.cut_off,
    members: c.members.map((m) => {
      const view = m.view as { leader?: unknown; databases?: Record<string, { status?: unknown }> };
      const sees: Record<string, string> = {};
      for (const [name, seen] of Object.entries(view.databases ?? {})) sees[name] = typeof seen?.status === 'string' ? seen.status : 'unknown';
      return { name: m.name, leader: view.leader === true, last_heartbeat: m.last_heartbeat, sees };
    }),
  };
}

function pageOffsite(o: OffsiteStatus): StatusPageOffsite {
  return {
    destination: o.destination,
    offsite_files: o.offsite_files,
    pending_files: o.pending_files,
    next: o.pending,
    last_arrived: o.last_arrived,
    last_success_at: o.last_success_at,
    // Credentials are never in it (the copier scrubs it); a URL's user information is masked all the same, as everywhere on this page.
    last_error: o.last_error && { message: publicValue('message', o.last_error.message, 0) as string, at: o.last_error.at },
  };
}

/** The fields of `record` not in `known`, made safe to show without a token. */
export function extraOf(record: Record<string, unknown>, known: ReadonlySet<string>): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (known.has(key) || value === undefined) continue;
    const shown = publicValue(key, value, 0);
    if (shown !== undefined) extra[key] = shown;
  }
  return extra;
}

/** A value without its secret-shaped keys, and any URL's user information masked; undefined: leave it out. */
function publicValue(key: string, value: unknown, depth: number): unknown {
  if (PRIVATE_KEY.test(key) || depth > 6) return undefined;
  if (typeof value === 'string') return value.replace(/\/\/[^/@\s]*@/g, '//***@');
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => publicValue('', v, depth + 1)).filter((v) => v !== undefined);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const shown = publicValue(k, v, depth + 1);
    if (shown !== undefined) out[k] = shown;
  }
  return out;
}
