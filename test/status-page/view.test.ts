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

test('drills are history entries of trigger drill, shown apart with whatever figures they carry', () => {
  const figures = { drill: { kind: 'switchover', write_outage_seconds: 0.042, rows_lost: 0, scratch_dir: '/tmp/x' } };
  const data = statusPageData(report(), { ...journal, history: [historyEntry(3, 'drill', figures), historyEntry(2, 'manual')] }, NOW);
  assert.deepEqual(data.drills.map((d) => d.id), [3]);
  assert.deepEqual(data.failovers.map((d) => d.id), [2]);
  const drills = section(pageView(data), 'drills');
  assert.equal(drills.rows.length, 1);
  const shown = drills.rows[0]!.map((c) => c.text);
  assert.equal(shown[3], 'success');
  assert.equal(shown[4], '1.50 s');
  assert.match(shown[5]!, /drill\.kind: switchover; drill\.write_outage: 42 ms; drill\.rows_lost: 0; sync 120 ms/);
  assert.doesNotMatch(shown[5]!, /tmp/, 'a path-shaped field is left out');
});

test('fields the page does not know yet are shown as they are: offsite copies of a backup, new top-level sections', () => {
  const windows = [{ database: 'primary', ranges: [{ from: '2026-05-01T00:00:00.000Z', to: '2026-05-01T11:59:00.000Z' }], gaps: [] }];
  const data = statusPageData(report({ restore_windows: windows, archive_password: 'nope' }), journal, NOW);
  const view = pageView(data);
  const backupMore = section(view, 'backups').rows[0]![7]!.text;
  assert.match(backupMore, /offsite: destination: s3, uploaded_at: 2026-05-01T10:00:03.000Z, note: via https:\/\/\*\*\*@proxy\.example\//);
  const more = section(view, 'more');
  // status's per-destination offsite copies (empty here) are a section the page does not know yet either.
  assert.deepEqual(more.rows.map((r) => r[0]!.text), ['offsite', 'restore windows']);
  assert.match(more.rows[1]![1]!.text, /database: primary, ranges: from: 2026-05-01T00:00:00.000Z, to: 2026-05-01T11:59:00.000Z, gaps: none/);
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
  const data = statusPageData(report({ restore_windows: [] }), journal, NOW);
  const source = `${CLIENT_FUNCTIONS.map(String).join('\n')}\npageView(data);`;
  // A context with nothing of this module in it: a helper missing from CLIENT_FUNCTIONS throws a ReferenceError here.
  const inBrowser = vm.runInNewContext(source, { data: JSON.parse(JSON.stringify(data)) }) as PageView;
  assert.deepEqual(JSON.parse(JSON.stringify(inBrowser)), JSON.parse(JSON.stringify(pageView(data))));
});
