/**
 * Continuous archiving across a switchover, and across a pg_receivewal that is
 * killed: the real sidecar and CLI, real PostgreSQL servers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createSandbox, eventually, freePort, type CliResult } from '../support/cli.js';
import { archiveConfig, between, idsInDataDir, insertStamps, STAMPS_TABLE, upTo } from '../support/pg-archive.js';
import { waitFor } from '../support/failover.js';
import { startPostgres, startStandby, waitForReplay } from '../support/postgres.js';

const show = (r: CliResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

interface WindowJson {
  database: string;
  ranges: Array<{ from: string; to: string }>;
  gaps: Array<{ from: string; to: string; reason: string }>;
}

describe('PostgreSQL archive across a switchover (real servers, real CLI)', { timeout: 900_000 }, () => {
  it('archiving moves to the new primary (its own slot, the new timeline); a moment after the switch restores exactly', async (t) => {
    const primary = await startPostgres();
    t.after(() => primary.destroy());
    await primary.createDatabase('shop');
    await primary.query(STAMPS_TABLE, [], 'shop');
    const standby = await startStandby(primary);
    t.after(() => standby.destroy());
    const sandbox = createSandbox(t);
    const port = await freePort();
    const doc = archiveConfig(primary, port);
    doc.disaster_recovery.databases.standby1 = { type: 'secondary', priority: 1, url: standby.url({ database: 'shop' }) };
    sandbox.writeConfig(doc);
    const run = (args: string[], timeoutMs = 60_000) => sandbox.run([...args, '--config', 'config.yaml'], { timeoutMs });
    const windowOf = async (db: string) => (JSON.parse((await run(['restore', '--list-times', '--json', '--database', db])).stdout) as WindowJson[])[0]!;

    const monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], startTimeoutMs: 30_000 });
    t.after(() => monitor.stop('SIGKILL').catch(() => undefined));
    const made = await run(['backup', '--database', 'primary'], 120_000);
    assert.equal(made.code, 0, show(made));
    const before = await insertStamps(primary, 1, 8, 300);
    await eventually('rows 1..8 archived from the old primary', 120_000, async () => Date.parse((await windowOf('primary')).ranges.at(-1)?.to ?? '0') >= before.get(8)!.getTime());
    await waitForReplay(primary, standby, 60_000);

    const switched = await run(['failover', 'standby1', '--reason', 'archive follows'], 120_000);
    assert.equal(switched.code, 0, show(switched));
    await eventually('the sidecar to hold a slot on the new primary', 60_000, async () => {
      const rows = await standby.query<{ slot_name: string; active: boolean }>('SELECT slot_name, active FROM pg_replication_slots');
      return rows.some((r) => r.slot_name === 'dr_sidecar_standby1' && r.active);
    });
    // The sidecar takes a base backup of the new primary at once: its window begins (moments after the switch need one on the new timeline).
    await eventually('a base backup of the new primary', 120_000, async () => existsSync(sandbox.path('backups/standby1')) && readdirSync(sandbox.path('backups/standby1')).some((n) => /^after-failover_.*\.tar\.gz\.manifest\.json$/.test(n)));
    const after = await insertStamps(standby, 9, 16, 300);
    await eventually('rows 9..16 archived from the new primary', 120_000, async () => Date.parse((await windowOf('standby1')).ranges.at(-1)?.to ?? '0') >= after.get(16)!.getTime());

    const wal = readdirSync(sandbox.path('backups/standby1/archive/wal'));
    assert.ok(wal.some((n) => /^00000002[0-9A-F]{16}(\.gz)?$/.test(n)), `segments of timeline 2 archived: ${wal.join(' ')}`);
    assert.ok(wal.some((n) => /^00000002\.history(\.gz)?$/.test(n)), `the new timeline's history archived: ${wal.join(' ')}; spool: ${readdirSync(sandbox.path('backups/standby1/archive/.spool')).join(' ')}`);
    const old = await windowOf('primary');
    assert.ok(Date.parse(old.ranges.at(-1)!.to) >= before.get(8)!.getTime(), 'the old primary keeps its window up to the switch');
    assert.deepEqual((await windowOf('standby1')).gaps, []);

    const into = path.join(mkdtempSync(path.join(os.tmpdir(), 'dr-into-')), 'data');
    chmodSync(path.dirname(into), 0o755); // the server runs as "postgres" when the tests run as root
    t.after(() => rmSync(path.dirname(into), { recursive: true, force: true }));
    const at12 = between(after.get(12)!, after.get(13)!);
    const restored = await run(['restore', '--to-time', at12.toISOString(), '--database', 'standby1', '--into', into], 240_000);
    assert.equal(restored.code, 0, show(restored));
    assert.deepEqual(await idsInDataDir(into), upTo(12));
    await monitor.stop('SIGTERM', 30_000);
  });
});

describe('PostgreSQL archive when pg_receivewal is killed (real server, real CLI)', { timeout: 600_000 }, () => {
  it('kill -9 of pg_receivewal: it is started again and the archive has no gap', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    await server.createDatabase('shop');
    await server.query(STAMPS_TABLE, [], 'shop');
    const sandbox = createSandbox(t);
    const port = await freePort();
    sandbox.writeConfig(archiveConfig(server, port));
    const run = (args: string[], timeoutMs = 60_000) => sandbox.run([...args, '--config', 'config.yaml'], { timeoutMs });
    const windowOf = async () => (JSON.parse((await run(['restore', '--list-times', '--json'])).stdout) as WindowJson[])[0]!;
    const monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], startTimeoutMs: 30_000 });
    t.after(() => monitor.stop('SIGKILL').catch(() => undefined));
    const made = await run(['backup'], 120_000);
    assert.equal(made.code, 0, show(made));
    const first = await insertStamps(server, 1, 5, 200);
    await eventually('rows 1..5 archived', 120_000, async () => Date.parse((await windowOf()).ranges.at(-1)?.to ?? '0') >= first.get(5)!.getTime());

    // The sidecar's pg_receivewal: its child streaming through the slot (the slot active on the server).
    const receiverPid = async () => {
      const rows = await server.query<{ active: boolean }>("SELECT active FROM pg_replication_slots WHERE slot_name = 'dr_sidecar_primary'");
      if (rows[0]?.active !== true) return undefined;
      const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
      const line = out.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => Number(f[1]) === monitor.pid && /pg_receivewal$/.test(f[2] ?? ''));
      return line ? Number(line[0]) : undefined;
    };
    const killed = await waitFor('pg_receivewal streaming', 60_000, receiverPid, 200);
    process.kill(killed, 'SIGKILL');
    // Writes go on while it is down; the slot holds their WAL.
    const during = await insertStamps(server, 6, 12, 200);
    await waitFor('a new pg_receivewal streaming through the slot', 60_000, async () => {
      const pid = await receiverPid();
      return pid !== undefined && pid !== killed;
    }, 200);
    const later = await insertStamps(server, 13, 16, 200);
    let window: WindowJson | undefined;
    await eventually('rows 13..16 archived', 120_000, async () => {
      window = await windowOf();
      return Date.parse(window.ranges.at(-1)?.to ?? '0') >= later.get(16)!.getTime();
    }, () => JSON.stringify(window));
    assert.deepEqual(window!.gaps, [], 'no gap');
    assert.equal(window!.ranges.length, 1, JSON.stringify(window));
    assert.equal(readdirSync(sandbox.path('backups/primary/archive/events')).length, 0, 'no hole recorded');

    const into = path.join(mkdtempSync(path.join(os.tmpdir(), 'dr-into-')), 'data');
    chmodSync(path.dirname(into), 0o755);
    t.after(() => rmSync(path.dirname(into), { recursive: true, force: true }));
    const at9 = between(during.get(9)!, during.get(10)!);
    const restored = await run(['restore', '--to-time', at9.toISOString(), '--into', into], 240_000);
    assert.equal(restored.code, 0, show(restored));
    assert.deepEqual(await idsInDataDir(into), upTo(9));
    assert.ok(existsSync(into));
    await monitor.stop('SIGTERM', 30_000);
  });
});
