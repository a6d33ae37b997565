/**
 * What the status page shows, decided once: `pageView(data)` turns the page's
 * data into sections of text cells. The server renders it with the eta
 * template; the browser runs the very same functions (their source is inlined
 * into the page, see CLIENT_FUNCTIONS) on every refresh of /status.json, so the
 * page never shows one thing at load and another after its first refresh.
 *
 * Hence the rule of this file: the functions in CLIENT_FUNCTIONS use nothing
 * but each other and the language itself (no imports, no module constants).
 */
import type { FailoverRecordJson } from '../failover/history.js';
import type { StatusPageData } from './data.js';

export type Tone = 'good' | 'bad' | 'warn' | 'muted' | '';

export interface Cell {
  text: string;
  tone: Tone;
  /** The exact value behind a rounded one (an ISO time behind "5 min ago"). */
  title: string;
}

export interface Section {
  id: string;
  title: string;
  notes: Array<{ text: string; tone: Tone }>;
  columns: string[];
  /** Columns of long text, which wrap (the others keep to one line; the table scrolls sideways when it must). */
  wide: number[];
  rows: Cell[][];
  /** Shown instead of the table when there is no row. */
  empty: string;
}

export interface Fact {
  id: string;
  label: string;
  value: string;
  tone: Tone;
}

export interface PageView {
  title: string;
  generated_at: string;
  /** Things a person must see first: a dead primary not being replaced, a store that cannot be trusted. */
  banners: Array<{ text: string; tone: Tone }>;
  facts: Fact[];
  sections: Section[];
}

export function pageView(data: StatusPageData): PageView {
  const now = Date.parse(data.generated_at);
  const primary = data.databases.find((d) => d.is_primary);
  return {
    title: `dr-sidecar: ${data.primary === null ? 'no primary' : `primary ${data.primary}`}${primary && primary.status !== 'up' ? ` (${primary.status})` : ''}`,
    generated_at: data.generated_at,
    banners: viewBanners(data, primary),
    facts: viewFacts(data, primary),
    sections: [
      viewDatabases(data, now),
      viewHistory('failovers', 'Last failovers', data.failovers, now, 'No failover yet.'),
      viewHistory('drills', 'Last drills', data.drills, now, 'No drill yet.'),
      viewBackups(data, now),
      viewAlerts(data, now),
      viewCluster(data, now),
      ...viewExtra(data),
    ],
  };
}

function viewCell(text: string, tone?: Tone, title?: string): Cell {
  return { text, tone: tone ?? '', title: title ?? '' };
}

function viewBanners(data: StatusPageData, primary: StatusPageData['databases'][number] | undefined): PageView['banners'] {
  const banners: PageView['banners'] = [];
  if (!data.enabled) banners.push({ text: 'Disaster recovery is disabled in the config (disaster_recovery.enabled: false).', tone: 'warn' });
  if (data.state_problem) banners.push({ text: `State store problem: ${data.state_problem}`, tone: 'bad' });
  if (data.cluster.cut_off) banners.push({ text: `This sidecar is cut off from the state store: ${data.cluster.cut_off}`, tone: 'bad' });
  if (data.primary === null) banners.push({ text: 'There is no primary.', tone: 'bad' });
  else if (primary && primary.status === 'down') banners.push({ text: `The primary ${data.primary} is down${primary.error ? `: ${primary.error}` : ''}.`, tone: 'bad' });
  if (data.journal_problem) banners.push({ text: `History and alerts unavailable: ${data.journal_problem}`, tone: 'warn' });
  if (data.auto_failover.held) banners.push({ text: `Failover held: ${data.auto_failover.held}`, tone: 'warn' });
  return banners;
}

function viewFacts(data: StatusPageData, primary: StatusPageData['databases'][number] | undefined): Fact[] {
  const auto = data.auto_failover;
  const leader = data.cluster.leader === null ? 'none' : data.cluster.leader + (data.cluster.is_leader ? ' (this sidecar)' : '');
  return [
    { id: 'primary', label: 'Primary', value: data.primary ?? 'none', tone: primary && primary.status === 'up' ? 'good' : 'bad' },
    { id: 'auto-failover', label: 'Automatic failover', value: (auto.enabled ? 'on' : 'off') + (auto.source === 'operator' ? ' (set by an operator)' : ''), tone: auto.enabled ? 'good' : 'warn' },
    { id: 'held', label: 'Failover', value: auto.held ?? (auto.enabled ? 'ready: a dead primary is replaced' : 'a dead primary is NOT replaced (automatic failover is off)'), tone: auto.held || !auto.enabled ? 'warn' : '' },
    { id: 'leader', label: 'Leader', value: leader, tone: data.cluster.leader === null ? 'warn' : '' },
    { id: 'epoch', label: 'Epoch', value: String(data.epoch), tone: '' },
  ];
}

function viewDatabases(data: StatusPageData, now: number): Section {
  const rows = data.databases.map((d) => {
    const role = !d.enabled ? 'disabled' : d.is_primary ? 'primary' : d.demoted ? 'demoted former primary' : 'secondary';
    const state = d.status === 'up' && d.read_only ? 'up, read-only' : d.status === 'down' && d.consecutive_failures > 0 ? `down (${d.consecutive_failures} failed)` : d.status;
    const tone: Tone = d.status === 'up' ? (d.read_only && d.is_primary ? 'warn' : 'good') : d.status === 'down' ? 'bad' : 'muted';
    const notes = [d.error, d.replication_warning, d.demoted_note, d.availability === null ? null : `available ${(d.availability * 100).toFixed(1)} %`];
    return [
      viewCell(d.name, d.is_primary ? 'good' : ''),
      viewCell(role, d.is_primary ? 'good' : d.demoted ? 'warn' : ''),
      viewCell(state, tone),
      viewCell(viewSeconds(d.response_time_seconds)),
      viewCell(d.is_primary ? '-' : viewSeconds(d.replication_lag_seconds)),
      viewCell(viewBytes(d.size_bytes)),
      viewCell(d.connections === null ? '-' : String(d.connections)),
      viewCell(viewAgo(d.checked_at, now), '', d.checked_at ?? ''),
      viewCell(d.engine),
      viewCell(notes.filter((n) => n).concat(viewFlatten(d.extra)).join('; '), d.error ? 'bad' : d.replication_warning ? 'warn' : 'muted'),
    ];
  });
  return {
    id: 'databases',
    title: 'Databases',
    notes: [],
    columns: ['Database', 'Role', 'State', 'Response', 'Lag', 'Size', 'Conns', 'Last probe', 'Engine', 'Notes'],
    wide: [9],
    rows,
    empty: 'No database is configured.',
  };
}

function viewHistory(id: string, title: string, records: FailoverRecordJson[], now: number, empty: string): Section {
  const known = ['id', 'epoch', 'started_at', 'finished_at', 'from', 'to', 'trigger', 'reason', 'result', 'error', 'data_sync', 'phases', 'former_primary'];
  const rows = records.map((r) => {
    const figures: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(r)) if (!known.includes(key)) figures[key] = value;
    const phases = Object.entries(r.phases ?? {}).map(([phase, ms]) => `${phase} ${viewSeconds(Number(ms) / 1000)}`);
    const sync = r.data_sync ? `${r.data_sync.method}${r.data_sync.complete ? '' : ' (incomplete)'}${r.data_sync.lag_seconds === null ? '' : `, lag ${viewSeconds(r.data_sync.lag_seconds)}`}` : '';
    const took = (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000;
    return [
      viewCell(viewAgo(r.started_at, now), '', r.started_at),
      viewCell(r.trigger),
      viewCell(`${r.from ?? '-'} → ${r.to ?? '-'}`),
      viewCell(r.result, r.result === 'success' ? 'good' : r.result === 'refused' ? 'warn' : 'bad'),
      viewCell(Number.isFinite(took) ? viewSeconds(took) : '-'),
      viewCell(viewFlatten(figures).concat(phases, sync ? [`data sync ${sync}`] : []).join('; ')),
      viewCell([r.reason, r.error, r.former_primary ? r.former_primary.note : null].filter((t) => t).join('; '), r.error ? 'bad' : 'muted'),
    ];
  });
  return { id, title, notes: [], columns: ['When', 'Trigger', 'From → to', 'Result', 'Took', 'Figures', 'Reason'], wide: [5, 6], rows, empty };
}

function viewBackups(data: StatusPageData, now: number): Section {
  const rows = data.backups.map((b) => {
    const verified = b.verified === null ? 'not yet' : b.verified ? 'yes' : 'FAILED';
    return [
      viewCell(b.database),
      viewCell(b.name),
      viewCell(viewAgo(b.created_at, now), '', b.created_at),
      viewCell(viewBytes(b.size_bytes)),
      viewCell(b.duration_seconds === null ? '-' : viewSeconds(b.duration_seconds)),
      viewCell(verified + (b.verified_at ? ` (${viewAgo(b.verified_at, now)})` : ''), b.verified === null ? 'muted' : b.verified ? 'good' : 'bad', b.verified_at ?? ''),
      viewCell(b.trigger),
      viewCell(viewFlatten(b.extra).join('; ')),
    ];
  });
  return {
    id: 'backups',
    title: 'Backups (newest good of each database)',
    notes: [],
    columns: ['Database', 'Backup', 'Taken', 'Size', 'Took', 'Verified', 'Trigger', 'Offsite, window, more'],
    wide: [7],
    rows,
    empty: 'No good backup yet.',
  };
}

function viewAlerts(data: StatusPageData, now: number): Section {
  const rows = data.alerts.map((a) => [
    viewCell(viewAgo(a.received_at, now), '', a.received_at),
    viewCell(a.alertname),
    viewCell(a.database ?? '-'),
    viewCell(a.status, a.status === 'firing' ? 'bad' : 'good'),
    viewCell(`${a.action}: ${a.outcome}`),
    viewCell([a.why, a.result].filter((t) => t).join('; '), 'muted'),
  ]);
  return {
    id: 'alerts',
    title: 'Alerts received',
    notes: [],
    columns: ['Received', 'Alert', 'Database', 'Status', 'Action', 'Why, result'],
    wide: [5],
    rows,
    empty: 'No alert received.',
  };
}

function viewCluster(data: StatusPageData, now: number): Section {
  const c = data.cluster;
  const notes: Section['notes'] = [
    { text: `State backend: ${c.backend}. Leader: ${c.leader ?? 'none'}${c.lease_expires_at ? `, lease until ${c.lease_expires_at}` : ''}.`, tone: c.leader === null ? 'warn' : '' },
  ];
  if (c.member) notes.push({ text: `This page is served by ${c.member}, ${c.is_leader ? 'the leader' : 'a follower'}.`, tone: '' });
  const rows = c.members.map((m) => [
    viewCell(m.name + (m.name === c.member ? ' (this one)' : ''), m.leader ? 'good' : ''),
    viewCell(m.leader ? 'leader' : 'follower'),
    viewCell(viewAgo(m.last_heartbeat, now), '', m.last_heartbeat),
    viewCell(Object.entries(m.sees).map(([db, status]) => `${db} ${status}`).join(', ')),
  ]);
  return { id: 'cluster', title: 'Sidecars', notes, columns: ['Member', 'Role', 'Heartbeat', 'Sees'], wide: [3], rows, empty: 'No member has published itself.' };
}

function viewExtra(data: StatusPageData): Section[] {
  const keys = Object.keys(data.extra);
  if (keys.length === 0) return [];
  const rows = keys.map((key) => {
    const value = data.extra[key];
    const texts = value !== null && typeof value === 'object' && !Array.isArray(value) ? viewFlatten(value as Record<string, unknown>) : viewFlatten({ value }).map((t) => t.replace(/^value: /, ''));
    return [viewCell(key.replace(/_/g, ' ')), viewCell(texts.join('; '))];
  });
  return [{ id: 'more', title: 'More', notes: [], columns: ['What', 'Value'], wide: [1], rows, empty: '' }];
}

/** Any JSON as `key: value` texts; nested keys dotted, units read from the key's suffix. */
function viewFlatten(value: Record<string, unknown>, prefix?: string): string[] {
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) {
      const items = v.map((item) => (item !== null && typeof item === 'object' ? viewFlatten(item as Record<string, unknown>).join(', ') : String(item)));
      out.push(`${name}: ${items.length === 0 ? 'none' : items.join(' | ')}`);
    } else if (typeof v === 'object') {
      out.push(...viewFlatten(v as Record<string, unknown>, name));
    } else if (typeof v === 'number' && /_seconds$/.test(key)) {
      out.push(`${name.replace(/_seconds$/, '')}: ${viewSeconds(v)}`);
    } else if (typeof v === 'number' && /_ms$/.test(key)) {
      out.push(`${name.replace(/_ms$/, '')}: ${viewSeconds(v / 1000)}`);
    } else if (typeof v === 'number' && /_bytes$/.test(key)) {
      out.push(`${name.replace(/_bytes$/, '')}: ${viewBytes(v)}`);
    } else {
      out.push(`${name}: ${String(v)}`);
    }
  }
  return out;
}

function viewSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '-';
  if (s === 0) return '0 s';
  if (s < 0.01) return `${(s * 1000).toFixed(2)} ms`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function viewBytes(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function viewAgo(iso: string | null, now: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return iso;
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Every function pageView needs, in the order the browser defines them. */
export const CLIENT_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [
  pageView,
  viewCell,
  viewBanners,
  viewFacts,
  viewDatabases,
  viewHistory,
  viewBackups,
  viewAlerts,
  viewCluster,
  viewExtra,
  viewFlatten,
  viewSeconds,
  viewBytes,
  viewAgo,
];
