/**
 * Point-in-time restore of PostgreSQL from an S3-compatible server alone: the
 * sidecar archives and copies base backups, segments and their commit times
 * offsite; the local backup folder is then deleted and the restore (into a
 * folder and into the database) is served by the destination.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, httpGet, type CliResult } from '../support/cli.js';
import { archiveConfig, archiveSandbox, between, idsInDataDir, insertStamps, upTo } from '../support/pg-archive.js';
import { startPostgres } from '../support/postgres.js';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3, type S3Server } from '../support/s3.js';

const show = (r: CliResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
const TOKEN = 'pitr-offsite-token-5b81e0';
const ENV = { S3_KEY: S3_ACCESS_KEY_ID, S3_SECRET: S3_SECRET_ACCESS_KEY };

interface WindowJson {
  database: string;
  ranges: Array<{ from: string; to: string }>;
  gaps: Array<{ from: string; to: string; reason: string }>;
}
interface OffsiteJson {
  pending_files: number;
  offsite_files: number;
}

let s3: S3Server;
before(async () => (s3 = await startS3()));
after(() => s3.close());

describe('PostgreSQL point-in-time restore from S3 alone (real server, s3rver, real CLI)', { timeout: 600_000 }, () => {
  it('with backup_dir deleted, --list-times and --to-time (into a folder and the database) are served by the destination', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const { sandbox, port } = await archiveSandbox(t, server);
    const doc = archiveConfig(server, port);
    doc.disaster_recovery.backup = {
      ...doc.disaster_recovery.backup,
      offsite: [{ ...s3.offsite('pitr/'), access_key_id: '${S3_KEY}', secret_access_key: '${S3_SECRET}' }],
    };
    doc.server.auth_token = TOKEN;
    sandbox.writeConfig(doc);
    const run = (args: string[], timeoutMs = 60_000) => sandbox.run([...args, '--config', 'config.yaml'], { env: ENV, timeoutMs });

    const monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env: ENV, startTimeoutMs: 30_000 });
    let stopped = false;
    t.after(async () => {
      if (!stopped) await monitor.stop('SIGKILL').catch(() => undefined);
    });
    const made = await run(['backup'], 120_000);
    assert.equal(made.code, 0, show(made));
    const times = await insertStamps(server, 1, 20, 300);

    const localWindow = async () => (JSON.parse((await run(['restore', '--list-times', '--json'])).stdout) as WindowJson[])[0]!;
    await eventually('the local window to reach the last commit', 120_000, async () => Date.parse((await localWindow()).ranges.at(-1)?.to ?? '0') >= times.get(20)!.getTime());
    await eventually('every archived file to be offsite', 120_000, async () => {
      const status = JSON.parse((await run(['status', '--json'])).stdout) as { offsite: OffsiteJson[] };
      return status.offsite[0]!.pending_files === 0 && status.offsite[0]!.offsite_files > 0;
    });
    const local = await localWindow();
    // /api/status (and so the status page) carries the window too, computed in the background.
    await eventually('/api/status to show the window up to the last commit', 90_000, async () => {
      const api = await httpGet(`${monitor.url}/api/status`, { authorization: `Bearer ${TOKEN}` });
      const windows = (JSON.parse(api.body) as { restore_windows?: Array<WindowJson & { computed_at: string }> }).restore_windows;
      return Date.parse(windows?.[0]?.ranges.at(-1)?.to ?? '0') >= times.get(20)!.getTime();
    });
    const page = await httpGet(`${monitor.url}/`);
    assert.match(page.body, /Point-in-time restore \(restore --to-time\)/);
    await monitor.stop('SIGTERM', 30_000);
    stopped = true;

    // The machine's backups are lost.
    rmSync(sandbox.path('backups'), { recursive: true, force: true });
    const listed = await run(['restore', '--list-times', '--json']);
    assert.equal(listed.code, 0, show(listed));
    const remote = (JSON.parse(listed.stdout) as WindowJson[])[0]!;
    assert.deepEqual(remote.ranges, local.ranges, 'the window offsite is the one the local folder had');
    assert.deepEqual(remote.gaps, []);

    const into = path.join(mkdtempSync(path.join(os.tmpdir(), 'dr-into-')), 'data');
    chmodSync(path.dirname(into), 0o755); // the server runs as "postgres" when the tests run as root
    t.after(() => rmSync(path.dirname(into), { recursive: true, force: true }));
    const at14 = between(times.get(14)!, times.get(15)!);
    const toDir = await run(['restore', '--to-time', at14.toISOString(), '--database', 'primary', '--into', into, '--json'], 180_000);
    assert.equal(toDir.code, 0, show(toDir));
    assert.match((JSON.parse(toDir.stdout) as { source: string }).source, /^s3:\/\//, toDir.stdout);
    assert.deepEqual(await idsInDataDir(into), upTo(14));

    const at7 = between(times.get(7)!, times.get(8)!);
    const toDb = await run(['restore', '--to-time', at7.toISOString(), '--yes'], 240_000);
    assert.equal(toDb.code, 0, show(toDb));
    const rows = await server.query<{ id: number }>('SELECT id FROM stamps ORDER BY id', [], 'shop');
    assert.deepEqual(rows.map((r) => r.id), upTo(7));
    assert.ok(existsSync(sandbox.path('backups')), 'the safety backup was written to a new backup_dir');

    const verified = await run(['verify'], 300_000);
    assert.match(verified.stdout, /archive of primary: ok.*no gaps/, show(verified));
  });
});
