import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createSandbox, eventually, freePort, httpGet } from '../support/cli.js';
import { archiveConfig, archiveSandbox, between, idsInDataDir, insertStamps, upTo } from '../support/pg-archive.js';
import { startPostgres } from '../support/postgres.js';

const show = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

interface WindowJson {
  database: string;
  ranges: Array<{ from: string; to: string }>;
  gaps: Array<{ from: string; to: string; reason: string }>;
}

describe('PostgreSQL point-in-time restore (real server, real CLI)', { timeout: 600_000 }, () => {
  it('restores exactly the rows committed before a moment, into a folder and into the database; a stopped sidecar leaves no gap', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const { sandbox, port } = await archiveSandbox(t, server);
    let monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], startTimeoutMs: 30_000 });
    t.after(() => monitor.stop('SIGKILL').catch(() => undefined));
    const made = await sandbox.run(['backup', '--json', '--config', 'config.yaml'], { timeoutMs: 120_000 });
    assert.equal(made.code, 0, show(made));
    assert.match(made.stdout, /\.tar\.gz/);

    const before = await insertStamps(server, 1, 20, 300);
    // The sidecar stops while writes go on: its slot keeps the WAL for it.
    await monitor.stop('SIGTERM', 30_000);
    const during = await insertStamps(server, 21, 30, 300);
    monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], startTimeoutMs: 30_000 });
    const after = await insertStamps(server, 31, 40, 300);
    const times = new Map([...before, ...during, ...after]);

    let window: WindowJson | undefined;
    await eventually('the window to reach the last commit', 120_000, async () => {
      const r = await sandbox.run(['restore', '--list-times', '--json', '--config', 'config.yaml']);
      window = (JSON.parse(r.stdout) as WindowJson[])[0];
      return window !== undefined && window.ranges.length > 0 && Date.parse(window.ranges.at(-1)!.to) >= times.get(40)!.getTime();
    }, () => JSON.stringify(window));
    assert.deepEqual(window!.gaps, [], 'no gap although the sidecar was stopped during writes');
    const metrics = await httpGet(`${monitor.url}/metrics`);
    assert.match(metrics.body, /^dr_archive_slot_retained_bytes\{database="primary"\} \d+$/m);
    assert.match(metrics.body, /^dr_archive_last_segment_timestamp_seconds\{database="primary"\} \d+/m);
    const listed = await sandbox.run(['restore', '--list-times', '--config', 'config.yaml']);
    assert.match(listed.stdout, /primary \(postgresql\):\n {2}restorable \d{4}-/);

    // Into a folder: a recovered data directory holding rows 1..25 (the moment falls between commits 25 and 26, while the sidecar was down).
    const into = path.join(mkdtempSync(path.join(os.tmpdir(), 'dr-into-')), 'data');
    chmodSync(path.dirname(into), 0o755); // the server runs as "postgres" when the tests run as root
    t.after(() => rmSync(path.dirname(into), { recursive: true, force: true }));
    const at25 = between(times.get(25)!, times.get(26)!);
    const toDir = await sandbox.run(['restore', '--to-time', at25.toISOString(), '--database', 'primary', '--into', into, '--config', 'config.yaml'], { timeoutMs: 180_000 });
    assert.equal(toDir.code, 0, show(toDir));
    assert.equal(statSync(into).mode & 0o777, 0o700);
    assert.deepEqual(await idsInDataDir(into), upTo(25));

    // Into the configured database: rows 1..12, after a safety backup.
    const at12 = between(times.get(12)!, times.get(13)!);
    const toDb = await sandbox.run(['restore', '--to-time', at12.toISOString(), '--yes', '--json', '--config', 'config.yaml'], { timeoutMs: 240_000 });
    assert.equal(toDb.code, 0, show(toDb));
    assert.ok((JSON.parse(toDb.stdout) as { safety_backup: string | null }).safety_backup, toDb.stdout);
    const rows = await server.query<{ id: number }>('SELECT id FROM stamps ORDER BY id', [], 'shop');
    assert.deepEqual(rows.map((r) => r.id), upTo(12));

    // Outside the window: refused, with the window in the message.
    const early = await sandbox.run(['restore', '--to-time', '2001-01-01T00:00:00Z', '--yes', '--config', 'config.yaml']);
    assert.equal(early.code, 2, show(early));
    assert.match(early.stderr, /outside the window .*restorable: \d{4}-/);

    const verified = await sandbox.run(['verify', '--config', 'config.yaml'], { timeoutMs: 300_000 });
    assert.match(verified.stdout, /archive of primary: ok/, show(verified));
    assert.match(verified.stdout, /no gaps/, show(verified));
    await monitor.stop('SIGTERM', 30_000);
  });
});

describe('PostgreSQL archive past the slot bound (real server, real CLI)', { timeout: 600_000 }, () => {
  it('reports the hole by time range when the server dropped the WAL its slot held', async (t) => {
    // No wal_keep_size: only the slot (bounded to 32 MB by the sidecar) keeps WAL.
    const server = await startPostgres({ settings: { wal_keep_size: '0' } });
    t.after(() => server.destroy());
    const { sandbox, port } = await archiveSandbox(t, server, { max_slot_wal_keep_mb: 32 });
    let monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], startTimeoutMs: 30_000 });
    t.after(() => monitor.stop('SIGKILL').catch(() => undefined));
    const made = await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 120_000 });
    assert.equal(made.code, 0, show(made));
    const first = await insertStamps(server, 1, 5, 200);
    const windowOf = async () => (JSON.parse((await sandbox.run(['restore', '--list-times', '--json', '--config', 'config.yaml'])).stdout) as WindowJson[])[0]!;
    await eventually('rows 1..5 archived', 60_000, async () => Date.parse((await windowOf()).ranges.at(-1)?.to ?? '0') >= first.get(5)!.getTime());
    await monitor.stop('SIGTERM', 30_000);

    // While the sidecar is away, far more WAL than the bound; the server invalidates the slot at a checkpoint.
    await server.query("CREATE TABLE bulk AS SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, 120000) g", [], 'shop');
    const lost = await insertStamps(server, 6, 10, 100);
    await eventually('the slot to be lost', 60_000, async () => {
      await server.query('CHECKPOINT');
      const rows = await server.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots');
      return rows[0]?.wal_status === 'lost';
    });
    monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], startTimeoutMs: 30_000 });
    await eventually('the slot to be created again', 60_000, async () => {
      const rows = await server.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots');
      return rows[0]?.wal_status === 'reserved';
    });
    // Moments after a hole need a base backup taken after it.
    const again = await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 120_000 });
    assert.equal(again.code, 0, show(again));
    const later = await insertStamps(server, 11, 15, 200);

    let window: WindowJson | undefined;
    await eventually('the gap to show and rows 11..15 to be archived', 120_000, async () => {
      window = await windowOf();
      return window.gaps.length === 1 && Date.parse(window.ranges.at(-1)?.to ?? '0') >= later.get(15)!.getTime();
    }, () => JSON.stringify(window));
    const gap = window!.gaps[0]!;
    // From the last archived commit before the hole (row 5 or the bulk load's) to the first after it (the segment the new slot starts in may still hold rows 6..10).
    assert.ok(Date.parse(gap.from) >= first.get(5)!.getTime() - 1 && Date.parse(gap.to) <= later.get(11)!.getTime() + 1 && gap.from < gap.to, JSON.stringify({ gap, lost: [...lost] }));
    assert.match(gap.reason, /segment\(s\) missing.*slot dr_sidecar_primary/);

    const verified = await sandbox.run(['verify', '--config', 'config.yaml'], { timeoutMs: 300_000 });
    assert.equal(verified.code, 1, show(verified));
    assert.match(verified.stdout, /archive of primary: BAD.*1 gap/, show(verified));
    assert.match(verified.stdout, /gap \d{4}-\S+ \.\. \d{4}-\S+: .*invalidated/, show(verified));

    const inHole = between(new Date(gap.from), new Date(gap.to));
    const refused = await sandbox.run(['restore', '--to-time', inHole.toISOString(), '--yes', '--config', 'config.yaml']);
    assert.equal(refused.code, 2, show(refused));
    assert.match(refused.stderr, /outside the window/);
    await monitor.stop('SIGTERM', 30_000);
  });
});

describe('PostgreSQL archive privileges (real server, real CLI)', { timeout: 120_000 }, () => {
  it('refuses a base backup for a role without REPLICATION, naming the attribute', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    await server.createDatabase('shop');
    await server.query('CREATE ROLE clerk LOGIN');
    const sandbox = createSandbox(t);
    const doc = archiveConfig(server, await freePort());
    doc.disaster_recovery.databases.primary!.url = server.url({ database: 'shop', user: 'clerk' });
    sandbox.writeConfig(doc);
    sandbox.createStateStore();
    const r = await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /cannot take a base backup of primary: role "clerk" lacks the REPLICATION attribute .*ALTER ROLE "clerk" REPLICATION/);
  });
});
