/**
 * What the sidecar writes holds whole databases: backups, their manifests, the
 * safety backup of a restore, the state store (with its -wal/-shm), the log
 * file, and the folders it makes for them are the owner's only, whatever the
 * umask. The real CLI and sidecar, run under `umask 000` and `umask 022`.
 * The application's own files and folders keep the modes they had.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createDemoSandbox, eventually, freePort, type CliResult } from '../support/cli.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const modeOf = (file: string) => (fs.statSync(file).mode & 0o777).toString(8).padStart(4, '0');

/** `{ path relative to the sandbox: mode }` for each of `files`. */
function modes(root: string, files: string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [path.relative(root, f), modeOf(f)]));
}

for (const umask of ['000', '022']) {
  test(`under umask ${umask}: backups, manifests, the safety backup, the state store and the log file are 0600, their folders 0700`, async (t) => {
    const port = await freePort();
    const { sandbox, doc } = createDemoSandbox(t, port, 5);
    doc.logging = { level: 'INFO', file: 'logs/sidecar/dr.log' };
    doc.state.path = 'state/dr-state.db';
    doc.disaster_recovery.backup.backup_dir = 'backups/all';
    doc.disaster_recovery.backup.enable_auto_backup = false;
    sandbox.writeConfig(doc);
    // The application's own files: their modes are the application's business.
    const app = { dir: sandbox.path('data'), primary: sandbox.path('data/images_primary.db'), secondary: sandbox.path('data/images_secondary1.db') };
    fs.chmodSync(app.dir, 0o755);
    fs.chmodSync(app.primary, 0o640);
    fs.chmodSync(app.secondary, 0o644);

    const m = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], umask });
    t.after(() => m.stop('SIGKILL').catch(() => undefined));
    const state = sandbox.path('state/dr-state.db');
    await eventually('the state store\'s -wal and -shm', 10_000, async () => fs.existsSync(`${state}-wal`) && fs.existsSync(`${state}-shm`));
    const log = sandbox.path('logs/sidecar/dr.log');
    assert.deepEqual(modes(sandbox.dir, [state, `${state}-wal`, `${state}-shm`, log]), {
      'state/dr-state.db': '0600',
      'state/dr-state.db-wal': '0600',
      'state/dr-state.db-shm': '0600',
      'logs/sidecar/dr.log': '0600',
    });
    assert.deepEqual(modes(sandbox.dir, [sandbox.path('state'), sandbox.path('logs'), sandbox.path('logs/sidecar')]), {
      state: '0700',
      logs: '0700',
      'logs/sidecar': '0700',
    });

    const backup = await sandbox.run(['backup', '--json', '--config', 'config.yaml'], { umask });
    assert.equal(backup.code, 0, show(backup));
    const file = (JSON.parse(backup.stdout) as { path: string }).path;
    const restored = await sandbox.run(['restore', file, '--yes', '--config', 'config.yaml'], { umask });
    assert.equal(restored.code, 0, show(restored));
    const safety = /previous contents saved to (\S+)/.exec(restored.stdout)?.[1];
    assert.ok(safety && fs.existsSync(safety), show(restored));
    assert.deepEqual(modes(sandbox.dir, [file, `${file}.manifest.json`, safety, `${safety}.manifest.json`]), {
      [path.relative(sandbox.dir, file)]: '0600',
      [path.relative(sandbox.dir, `${file}.manifest.json`)]: '0600',
      [path.relative(sandbox.dir, safety)]: '0600',
      [path.relative(sandbox.dir, `${safety}.manifest.json`)]: '0600',
    });
    assert.deepEqual(modes(sandbox.dir, [sandbox.path('backups'), sandbox.path('backups/all'), path.dirname(file)]), {
      backups: '0700',
      'backups/all': '0700',
      'backups/all/primary': '0700',
    });
    const stopped = await m.stop('SIGTERM');
    assert.equal(stopped.code, 0, show(stopped));

    assert.deepEqual(modes(sandbox.dir, [app.dir, app.primary, app.secondary]), {
      data: '0755',
      'data/images_primary.db': '0640',
      'data/images_secondary1.db': '0644',
    });
    assert.equal(fs.readdirSync(app.dir).filter((f) => f.includes('.tmp-')).length, 0, 'no temporary file left beside the databases');
  });
}
