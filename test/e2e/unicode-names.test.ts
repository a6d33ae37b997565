/**
 * The guide's users name things in Chinese: databases and backups named in
 * any script work end to end (backup file and folder, history, metrics labels,
 * routing), while names that would leave a folder, end a line or split a word
 * are still refused with their config path.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import type { BackupRecord } from '../../src/backup/backups.js';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import { configProblems, createDemoSandbox, eventually, freePort, httpGet, stackLines, type CliResult } from '../support/cli.js';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  return r;
}

test('databases 主库 and 备库, a backup named 升级前: backup, failover, history, metrics and routing', async (t) => {
  const port = await freePort();
  const { sandbox, doc } = createDemoSandbox(t, port);
  doc.disaster_recovery.databases.primary!.name = '主库';
  doc.disaster_recovery.databases.secondary1!.name = '备库';
  doc.disaster_recovery.databases.secondary2!.name = '备库二';
  doc.disaster_recovery.backup = { ...doc.disaster_recovery.backup, enable_auto_backup: false };
  doc.server.auth_token = 'a-token-of-32-characters-0123456';
  sandbox.writeConfig(doc);
  const cli = (...args: string[]) => sandbox.run([...args, '--config', 'config.yaml'], { timeoutMs: 30_000 });

  const made = JSON.parse(ok(await cli('backup', '--name', '升级前', '--json')).stdout) as BackupRecord;
  assert.equal(made.database, '主库');
  assert.ok(made.path.startsWith(sandbox.path('backups/主库/升级前_')) && made.path.endsWith('.db.gz'), made.path);
  assert.ok(fs.existsSync(made.path) && fs.existsSync(`${made.path}.manifest.json`));
  assert.match(ok(await cli('verify', made.path)).stdout, /^ok {3}\S*\/主库\/升级前_\S+ {2}sha256 ok/m);

  ok(await cli('failover', '备库', '--reason', '维护升级'));
  assert.match(ok(await cli('history')).stdout, /^#1 \S+ {2}manual {2}主库 -> 备库 {2}SUCCESS {2}\(epoch 1\)\n {3}reason: 维护升级$/m);
  const [record] = JSON.parse(ok(await cli('history', '--json')).stdout) as FailoverRecordJson[];
  assert.deepEqual([record!.from, record!.to, record!.reason], ['主库', '备库', '维护升级']);
  assert.match(ok(await cli('status')).stdout, /^Current primary: {3}备库$/m);

  const sidecar = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  t.after(async () => void (await sidecar.stop()));
  let metrics = '';
  await eventually('主库 probed up', 20_000, async () => {
    metrics = (await httpGet(`${sidecar.url}/metrics`)).body;
    return /^dr_database_up\{database="主库"\} 1$/m.test(metrics) && /^dr_database_up\{database="备库"\} 1$/m.test(metrics);
  }, () => metrics.split('\n').filter((l) => l.startsWith('dr_')).join('\n'));
  assert.match(metrics, /^dr_database_is_primary\{database="备库"\} 1$/m);
  assert.match(metrics, /^dr_backup_last_success_timestamp_seconds\{database="主库"\} \d+/m);
  assert.equal((await httpGet(`${sidecar.url}/primary/${encodeURIComponent('备库')}`)).status, 200);
  assert.equal((await httpGet(`${sidecar.url}/primary/${encodeURIComponent('主库')}`)).status, 503);
});

test('names that would leave a folder, end a line or hold a space are refused, with the config path or the option', async (t) => {
  const { sandbox, doc } = createDemoSandbox(t, await freePort());
  doc.disaster_recovery.databases.primary!.name = '主 库';
  doc.disaster_recovery.databases.secondary1!.name = '..';
  doc.disaster_recovery.databases.secondary2!.name = '备库\n二';
  sandbox.writeConfig(doc);
  const r = await sandbox.run(['status', '--config', 'config.yaml']);
  assert.equal(r.code, 2, show(r));
  const problems = configProblems(r.stderr);
  assert.equal(problems.length, 3, r.stderr);
  assert.match(problems[0]!, /^disaster_recovery\.databases\.primary\.name: "主 库" may only hold letters and digits \(of any script\)/);
  assert.match(problems[1]!, /^disaster_recovery\.databases\.secondary1\.name: "\.\." cannot be "\." or "\.\."/);
  assert.match(problems[2]!, /^disaster_recovery\.databases\.secondary2\.name: "备库\\n二" may only hold/);

  const good = createDemoSandbox(t, await freePort()).sandbox;
  for (const name of ['升级/前', '升级\n前', '.隐藏', '升级 前']) {
    const refused = await good.run(['backup', '--name', name, '--config', 'config.yaml']);
    assert.equal(refused.code, 2, show(refused));
    assert.match(refused.stderr, /^error: invalid backup name ".*": it /);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  }
});
