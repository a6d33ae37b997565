import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { eventually } from '../support/cli.js';
import { archiveSandbox, between, idsInDataDir, insertStamps, upTo } from '../support/pg-archive.js';
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
