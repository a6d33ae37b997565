/**
 * The failover commands of the real CLI (subprocesses, one per command, sharing
 * the state store) on SQLite files: `failover` and its refusals, `history
 * --limit N` newest first (text and --json), the persisted auto-failover
 * switch, and `reinstate`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FailoverRecordJson } from '../../src/failover/history.js';
import type { StatusReport } from '../../src/status.js';
import { stackLines, type CliResult } from '../support/cli.js';
import { imageIds, insertImage, moveAway, sqliteCluster } from '../support/sqlite-cluster.js';
import Database from 'better-sqlite3';

const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  return r;
}

function refused(r: CliResult, code: number, message: RegExp): void {
  assert.equal(r.code, code, show(r));
  assert.match(r.stderr.trim(), message, show(r));
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr:\n${r.stderr}`);
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  assert.equal(r.stdout, '');
}

test('SQLite CLI: failover, refusals, history --limit newest first, persisted auto-failover switch, reinstate', async (t) => {
  // A CLI process's first probe includes starting its probe thread: the default timeout, not the fast one.
  const cluster = sqliteCluster(t, { secondaries: ['secondary1', 'secondary2', 'spare'], disabled: ['spare'], monitoring: { probe_timeout: 5 } });
  const status = async (): Promise<StatusReport> => JSON.parse(ok(await cluster.cli('status', '--json')).stdout) as StatusReport;

  assert.equal(ok(await cluster.cli('history')).stdout, 'no failover yet\n');
  assert.deepEqual(JSON.parse(ok(await cluster.cli('history', '--json')).stdout), []);

  // Refusals: a clear line, exit 2 for a wrong argument, 1 for a refusal by the world; nothing changes.
  refused(await cluster.cli('failover', 'nope'), 2, /^error: unknown database "nope" \(configured: primary, secondary1, secondary2, spare\)$/);
  refused(await cluster.cli('failover', 'spare'), 2, /^error: database "spare" is disabled in the config$/);
  refused(await cluster.cli('failover', 'primary'), 2, /^error: database "primary" is already the primary$/);
  const gone = moveAway(cluster.file('secondary2'));
  refused(await cluster.cli('failover', 'secondary2'), 1, /^error: database "secondary2" is down \(database file not found: .*\); nothing changed$/);
  gone.restore();
  for (const limit of ['0', '99999999999999999999', '1e3', '10001']) {
    refused(await cluster.cli('history', '--limit', limit), 2, new RegExp(`^error: --limit: expected a whole number from 1 to 10000, got "${limit}"$`));
  }
  let report = await status();
  assert.equal(report.primary, 'primary');
  assert.equal(report.epoch, 0);

  // Three switchovers: primary -> secondary1 -> primary -> secondary2, each bringing the target up to date.
  const marker = new Database(cluster.file('primary'));
  insertImage(marker, 9001);
  marker.close();
  const hops: Array<[string, string, string]> = [
    ['primary', 'secondary1', 'upgrade 1'],
    ['secondary1', 'primary', 'upgrade 2'],
    ['primary', 'secondary2', '维护升级'],
  ];
  for (const [from, to, reason] of hops) {
    const r = ok(await cluster.cli('failover', to, '--reason', reason));
    assert.match(r.stdout, new RegExp(`^#\\d+ \\S+  manual  ${from} -> ${to}  SUCCESS  \\(epoch \\d\\)$`, 'm'), r.stdout);
    assert.match(r.stdout, new RegExp(`^   reason: ${reason}$`, 'm'));
    assert.match(r.stdout, /^ {3}data sync: final-copy, complete: copied \d+ bytes from \S+ in \d+ ms under its write lock$/m);
    assert.match(r.stdout, /^ {3}phases: choose \d+ ms, sync \d+ ms, switch \d+ ms$/m);
    // Lossless: the former primary holds nothing the new one lacks, and the periodic copies keep it so.
    assert.match(r.stdout, new RegExp(`^   former primary: ${from} stays a failover candidate: WAL shipping keeps it up to date from ${to}$`, 'm'));
  }
  assert.ok(imageIds(cluster.file('secondary2')).has(9001), 'the row written on the first primary travelled with every switch');

  // history --limit 2: the two newest, newest first.
  const text = ok(await cluster.cli('history', '--limit', '2')).stdout;
  const headers = text.split('\n').filter((l) => l.startsWith('#'));
  assert.equal(headers.length, 2, text);
  assert.match(headers[0]!, /^#3 \S+ {2}manual {2}primary -> secondary2 {2}SUCCESS {2}\(epoch 3\)$/);
  assert.match(headers[1]!, /^#2 \S+ {2}manual {2}secondary1 -> primary {2}SUCCESS {2}\(epoch 2\)$/);
  const json = JSON.parse(ok(await cluster.cli('history', '--limit', '2', '--json')).stdout) as FailoverRecordJson[];
  assert.deepEqual(
    json.map((r) => [r.id, r.from, r.to, r.reason, r.result, r.epoch]),
    [
      [3, 'primary', 'secondary2', '维护升级', 'success', 3],
      [2, 'secondary1', 'primary', 'upgrade 2', 'success', 2],
    ],
  );
  assert.ok(json.every((r) => r.trigger === 'manual' && r.data_sync?.complete === true && typeof r.phases.sync === 'number'));
  assert.ok(Date.parse(json[0]!.started_at) >= Date.parse(json[1]!.finished_at), 'newest first');
  const all = JSON.parse(ok(await cluster.cli('history', '--json')).stdout) as FailoverRecordJson[];
  assert.deepEqual(all.map((r) => r.id), [3, 2, 1]);

  // Lossless switchovers of SQLite databases demote nobody: every former primary stays a candidate.
  report = await status();
  assert.equal(report.primary, 'secondary2');
  assert.equal(report.epoch, 3);
  const demoted = (r: StatusReport) => r.databases.filter((d) => d.demoted).map((d) => d.name).sort();
  assert.deepEqual(demoted(report), []);

  // A failover away from a primary that is gone is not lossless: the former primary is demoted, and status says what to do.
  const lost = moveAway(cluster.file('secondary2'));
  const lossy = ok(await cluster.cli('failover', 'secondary1', '--reason', 'secondary2 lost'));
  assert.match(lossy.stdout, /^ {3}former primary: secondary2 is demoted: it may hold writes the new primary lacks/m, lossy.stdout);
  lost.restore();
  report = await status();
  assert.deepEqual(demoted(report), ['secondary2']);
  assert.match(report.databases.find((d) => d.name === 'secondary2')?.demoted_note ?? '', /reinstate secondary2/);
  const statusText = ok(await cluster.cli('status')).stdout;
  assert.match(statusText, /^secondary2 \(demoted\)\s/m);
  assert.match(statusText, /^secondary2 \(demoted\): secondary2 is demoted: .*`disaster-recovery reinstate secondary2`/m);

  // reinstate: persisted, seen by the next process.
  refused(await cluster.cli('reinstate', 'nope'), 2, /^error: unknown database "nope" \(configured: primary, secondary1, secondary2, spare\)$/);
  // Not for the current primary (the world: exit 1), nor for a database the config disables (exit 2); nothing changes.
  refused(await cluster.cli('reinstate', 'secondary1'), 1, /^error: secondary1 is the current primary; reinstate is for a demoted former primary/);
  refused(await cluster.cli('reinstate', 'spare'), 2, /^error: spare is disabled in the config \(enabled: false\)/);
  assert.deepEqual(demoted(await status()), ['secondary2']);
  assert.match(ok(await cluster.cli('reinstate', 'secondary2')).stdout, /^secondary2 may be chosen by automatic failover again$/m);
  assert.deepEqual(demoted(await status()), []);

  // The auto-failover switch: persisted, overrides the config, seen by every new process.
  assert.equal(report.auto_failover.enabled, true);
  assert.equal(report.auto_failover.source, 'config');
  assert.equal(ok(await cluster.cli('disable-auto-failover')).stdout, 'automatic failover disabled\n');
  report = await status();
  assert.deepEqual([report.auto_failover.enabled, report.auto_failover.source], [false, 'operator']);
  assert.match(ok(await cluster.cli('status')).stdout, /^Auto-failover:\s+disabled \(set by an operator\)$/m);
  assert.equal(ok(await cluster.cli('enable-auto-failover')).stdout, 'automatic failover enabled\n');
  report = await status();
  assert.deepEqual([report.auto_failover.enabled, report.auto_failover.source], [true, 'operator']);
  // Nothing above is a failover attempt.
  assert.equal((JSON.parse(ok(await cluster.cli('history', '--json')).stdout) as FailoverRecordJson[]).length, 4);
});
