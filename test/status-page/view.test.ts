/**
 * The status page's data and view as plain functions: what a token-less page
 * leaves out, how fields it does not know yet (a drill's figures, offsite
 * copies, restore windows) are shown, and that the functions the browser runs
 * are self-contained and give exactly what the server renders.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import vm from 'node:vm';
import { statusPageData, type StatusPageJournal } from '../../src/status-page/data.js';
import { CLIENT_FUNCTIONS, pageView, type PageView, type Section } from '../../src/status-page/view.js';
import type { FailoverRecord } from '../../src/state/store.js';
import type { DatabaseStatus, StatusReport } from '../../src/status.js';
import type { OffsiteStatus } from '../../src/backup/offsite-status.js';

const NOW = new Date('2026-05-01T12:00:00.000Z');

function database(name: string, extra: Partial<DatabaseStatus> = {}): DatabaseStatus {
  return {
    name,
    type: name === 'primary' ? 'primary' : 'secondary',
    priority: name === 'primary' ? 0 : 1,
    engine: 'postgresql',
    url: `postgresql://crawler:***@db.internal:5432/${name}`,
    enabled: true,
    is_primary: name === 'primary',
    demoted: false,
    demoted_note: null,
    status: 'up',
    response_time_seconds: 0.0123,
    size_bytes: 5 * 1024 * 1024,
    connections: 3,
    in_recovery: name !== 'primary',
    read_only: false,
    replication_lag_seconds: name === 'primary' ? null : 0.5,
    replication_warning: null,
    consecutive_failures: 0,
    error_count: 0,
    error: null,
    last_error: null,
    checked_at: '2026-05-01T11:59:58.000Z',
    history: { samples: 10, since: '2026-05-01T11:00:00.000Z', availability: 1, average_response_seconds: 0.01, max_response_seconds: 0.02 },
    ...extra,
  };
}

function report(extra: Record<string, unknown> = {}): StatusReport {
  return {
    enabled: true,
    config: '/etc/dr/config.yaml',
    state_store: { path: '/var/lib/dr/state.db', problem: null },
    primary: 'primary',
    epoch: 3,
    auto_failover: { enabled: false, source: 'operator', held: 'primary primary is down and automatic failover is disabled' },
    last_backup: null,
    offsite: [],
    databases: [database('primary', { status: 'down', error: 'connection refused', consecutive_failures: 4 }), database('standby')],
    cluster: {
      backend: 'etcd',
      member: 'host-a:9898',
      is_leader: false,
      leader: 'host-b:9898',
      lease: { holder: 'host-b:9898/4242.1', expires_at: '2026-05-01T12:00:05.000Z', ttl_seconds: 10 },
      members: [
        { name: 'host-a:9898', last_heartbeat: '2026-05-01T11:59:59.000Z', view: { leader: false, databases: { primary: { status: 'down' } }, secret_note: 'x' } },
        { name: 'host-b:9898', last_heartbeat: '2026-05-01T11:59:58.000Z', view: { leader: true, databases: { primary: { status: 'down' } } } },
      ],
      cut_off: null,
    },
    ...extra,
  } as StatusReport;
}

function historyEntry(id: number, trigger: string, extra: Record<string, unknown> = {}): FailoverRecord {
  return {
    id,
    epoch: id,
    startedAt: '2026-05-01T11:00:00.000Z',
    finishedAt: '2026-05-01T11:00:01.500Z',
    from: 'primary',
    to: 'standby',
    trigger: trigger as FailoverRecord['trigger'],
    reason: `reason ${id}`,
    result: 'success',
    error: null,
    dataSync: null,
    phases: { sync: 120 },
    ...extra,
  } as FailoverRecord;
}

const journal: StatusPageJournal = {
  history: [historyEntry(3, 'drill'), historyEntry(2, 'manual'), historyEntry(1, 'auto')],
  alerts: [],
  backups: [
    {
      database: 'primary',
      name: 'scheduled',
      trigger: 'scheduled',
      created_at: '2026-05-01T10:00:00.000Z',
      finished_at: '2026-05-01T10:00:02.000Z',
      duration_seconds: 2,
      size_bytes: 2048,
      sha256: 'a'.repeat(64),
      path: '/var/lib/dr/backups/primary/x.dump.gz',
      source: { url: 'postgresql://crawler:***@db.internal/primary', size_bytes: 1 },
      verification: { at: '2026-05-01T10:05:00.000Z', ok: true, detail: 'restored' },
      offsite: [{ destination: 's3', uploaded_at: '2026-05-01T10:00:03.000Z', secret_access_key: 'AKIA-SECRET', endpoint: 'http://minio:9000', note: 'via https://user:pw@proxy.example/' }],
    },
  ],
};

const section = (view: PageView, id: string): Section => view.sections.find((s) => s.id === id)!;

test('the data leaves out what /api/status keeps behind its token: URLs, paths, the lease holder, member views', () => {
  const data = statusPageData(report(), journal, NOW);
  const text = JSON.stringify(data);
  for (const hidden of ['db.internal', '/etc/dr', '/var/lib/dr', '4242', 'secret_note', 'AKIA-SECRET', 'minio', 'user:pw', 'a'.repeat(64)]) {
    assert.ok(!text.includes(hidden), `${hidden} in ${text}`);
  }
  assert.deepEqual(data.cluster.members.map((m) => [m.name, m.leader, m.sees]), [
    ['host-a:9898', false, { primary: 'down' }],
    ['host-b:9898', true, { primary: 'down' }],
  ]);
  assert.equal(data.backups[0]!.verified, true);
});

test('drills are the entries carrying a drill report: what each proved, its outage each way, rows checked; its own switchovers stay among the failovers', () => {
  const drill = {
    kind: 'switchover',
    result: 'success',
    detail: 'switched there and back, no row lost',
    requestedBy: 'scheduled',
    durationSeconds: 1.5,
    switchover: {
      original: 'primary', target: 'standby', endedOn: 'primary', outageThereSeconds: 0.042, outageBackSeconds: 0.051,
      probeCommits: 40, probeFailures: 2, rowsBefore: { orders: 7 }, rowsAfter: { orders: 9 }, rowsShort: {}, switchIds: [2, 3],
    },
  };
  const data = statusPageData(report(), { ...journal, history: [historyEntry(4, 'drill', { drill }), historyEntry(3, 'drill'), historyEntry(2, 'manual')] }, NOW);
  assert.deepEqual(data.drills.map((d) => d.id), [4]);
  assert.deepEqual(data.failovers.map((d) => d.id), [3, 2], "the drill's own switchover is a failover entry of trigger drill");
  const drills = section(pageView(data), 'drills');
  assert.equal(drills.rows.length, 1);
  const shown = drills.rows[0]!.map((c) => c.text);
  assert.equal(shown[1], 'switchover (scheduled)');
  assert.equal(shown[2], 'success');
  assert.equal(shown[3], '1.50 s');
  assert.equal(shown[4], '42 ms / 51 ms');
  assert.equal(shown[5], '7');
  assert.match(shown[6]!, /no row lost \(ended on primary\)/);
});

test('fields the page does not know yet are shown as they are: offsite copies of a backup, new top-level sections', () => {
  const replicas = [{ database: 'primary', lag: { from: '2026-05-01T00:00:00.000Z', to: '2026-05-01T11:59:00.000Z' }, notes: [] }];
  const data = statusPageData(report({ read_replicas: replicas, archive_password: 'nope' }), journal, NOW);
  const view = pageView(data);
  const backupMore = section(view, 'backups').rows[0]![7]!.text;
  assert.match(backupMore, /offsite: destination: s3, uploaded_at: 2026-05-01T10:00:03.000Z, note: via https:\/\/\*\*\*@proxy\.example\//);
  const more = section(view, 'more');
  assert.deepEqual(more.rows.map((r) => r[0]!.text), ['read replicas']);
  assert.match(more.rows[0]![1]!.text, /database: primary, lag\.from: 2026-05-01T00:00:00.000Z, lag\.to: 2026-05-01T11:59:00.000Z, notes: none/);
});

const WINDOWS = [
  {
    database: 'primary',
    engine: 'postgresql',
    ranges: [
      { from: '2026-04-30T00:00:00.000Z', to: '2026-04-30T06:00:00.000Z' },
      { from: '2026-05-01T00:00:00.000Z', to: '2026-05-01T11:59:00.000Z' },
    ],
    gaps: [{ from: '2026-04-30T06:00:00.000Z', to: '2026-04-30T07:00:00.000Z', reason: '3 WAL segment(s) missing after 000000010000000000000004' }],
    computed_at: '2026-05-01T11:59:50.000Z',
  },
  { database: 'standby', engine: 'postgresql', ranges: [], gaps: [], computed_at: '2026-05-01T11:59:50.000Z' },
];

test('the restore windows have their own section, labelled, newest range first; none while archiving is off', () => {
  const view = pageView(statusPageData(report({ restore_windows: WINDOWS }), journal, NOW));
  const windows = section(view, 'restore-windows');
  assert.deepEqual(windows.columns, ['Database', 'Engine', 'Restorable from', 'Restorable to (last archived commit)', 'Earlier ranges', 'Gaps', 'Computed']);
  assert.deepEqual(windows.rows[0]!.map((c) => c.text), [
    'primary',
    'postgresql',
    '2026-05-01T00:00:00.000Z',
    '2026-05-01T11:59:00.000Z (60 s ago)',
    '2026-04-30T00:00:00.000Z .. 2026-04-30T06:00:00.000Z',
    '2026-04-30T06:00:00.000Z .. 2026-04-30T07:00:00.000Z: 3 WAL segment(s) missing after 000000010000000000000004',
    '10 s ago',
  ]);
  assert.equal(windows.rows[0]![5]!.tone, 'bad');
  assert.deepEqual(windows.rows[1]!.slice(2, 6).map((c) => [c.text, c.tone]), [['no window yet', 'warn'], ['-', ''], ['-', 'muted'], ['none', 'good']]);
  assert.equal(view.sections.some((s) => s.id === 'more' && s.rows.some((r) => r[0]!.text === 'restore windows')), false, 'not shown again among the unknown');
  assert.equal(pageView(statusPageData(report(), journal, NOW)).sections.some((s) => s.id === 'restore-windows'), false);
});

const offsite: OffsiteStatus[] = [
  {
    destination: 's3://crawler-backups/prod/',
    offsite_files: 12,
    pending_files: 0,
    pending: [],
    last_arrived: { key: 'primary/backup_20260501_100000.dump.gz.manifest.json', at: '2026-05-01T10:00:04.000Z' },
    last_success_at: '2026-05-01T11:59:30.000Z',
    last_error: null,
  },
  {
    destination: 's3://dr-copy/',
    offsite_files: 3,
    pending_files: 7,
    pending: ['primary/a.dump.gz', 'primary/a.dump.gz.manifest.json', 'primary/b.dump.gz', 'primary/b.dump.gz.manifest.json', 'primary/c.dump.gz'],
    last_arrived: null,
    last_success_at: null,
    last_error: { message: 's3://dr-copy/ at http://admin:hunter22@10.0.0.9:9000: writing primary/a.dump.gz failed: connect ECONNREFUSED', at: '2026-05-01T11:58:00.000Z' },
  },
];

test('offsite copies: a table per destination, after the backups, with what arrived, what is pending and the last error', () => {
  const view = pageView(statusPageData(report({ offsite }), journal, NOW));
  const ids = view.sections.map((s) => s.id);
  assert.equal(ids.indexOf('offsite'), ids.indexOf('backups') + 1);
  assert.ok(!ids.includes('more'), 'offsite is no longer a section the page does not know');
  const table = section(view, 'offsite');
  assert.deepEqual(table.columns, ['Destination', 'Files offsite', 'Pending', 'Last arrived', 'Last successful pass', 'Last error']);
  const [good, failing] = table.rows.map((r) => r.map((c) => c.text));
  assert.deepEqual(good, ['s3://crawler-backups/prod/', '12', 'none', 'primary/backup_20260501_100000.dump.gz.manifest.json, 2 h ago', '30 s ago', 'none']);
  assert.deepEqual(table.rows[0]!.map((c) => c.tone), ['good', '', 'good', '', '', 'muted']);
  assert.equal(table.rows[0]![3]!.title, '2026-05-01T10:00:04.000Z', 'the exact time behind "2 h ago"');
  assert.deepEqual(failing!.slice(0, 5), [
    's3://dr-copy/',
    '3',
    '7 (next: primary/a.dump.gz, primary/a.dump.gz.manifest.json, primary/b.dump.gz, primary/b.dump.gz.manifest.json, primary/c.dump.gz, …)',
    'nothing yet',
    'never',
  ]);
  assert.equal(failing![5], '2 min ago: s3://dr-copy/ at http://***@10.0.0.9:9000: writing primary/a.dump.gz failed: connect ECONNREFUSED');
  assert.deepEqual(table.rows[1]!.map((c) => c.tone), ['bad', '', 'warn', 'muted', 'warn', 'bad']);
  assert.ok(!JSON.stringify(statusPageData(report({ offsite }), journal, NOW)).includes('hunter22'));
});

test('offsite copies: without a destination the section says how to have one', () => {
  const table = section(pageView(statusPageData(report(), journal, NOW)), 'offsite');
  assert.deepEqual(table.rows, []);
  assert.equal(table.empty, 'No offsite destination is configured (backup.offsite).');
});

test('a dead primary that is not replaced says so first, with the reason', () => {
  const view = pageView(statusPageData(report(), journal, NOW));
  assert.deepEqual(view.banners.map((b) => b.text), [
    'The primary primary is down: connection refused.',
    'Failover held: primary primary is down and automatic failover is disabled',
  ]);
  assert.equal(view.facts.find((f) => f.id === 'auto-failover')!.value, 'off (set by an operator)');
  assert.equal(view.facts.find((f) => f.id === 'leader')!.value, 'host-b:9898');
  assert.deepEqual(section(view, 'databases').rows[0]!.slice(0, 3).map((c) => c.text), ['primary', 'primary', 'down (4 failed)']);
});

test('the functions the browser runs are self-contained and render exactly what the server renders', () => {
  const data = statusPageData(report({ restore_windows: WINDOWS, offsite }), journal, NOW);
  const source = `${CLIENT_FUNCTIONS.map(String).join('\n')}\npageView(data);`;
  // A context with nothing of this module in it: a helper missing from CLIENT_FUNCTIONS throws a ReferenceError here.
  const inBrowser = vm.runInNewContext(source, { data: JSON.parse(JSON.stringify(data)) }) as PageView;
  assert.deepEqual(JSON.parse(JSON.stringify(inBrowser)), JSON.parse(JSON.stringify(pageView(data))));
});
