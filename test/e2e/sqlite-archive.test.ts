/**
 * SQLite continuous archiving and point-in-time restore, as a user meets them:
 * a real sidecar (start-monitoring) archives a real SQLite primary the
 * application writes to; the real CLI lists the window, restores to moments
 * between commits, verifies the archive.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseArchiveKey } from '../../src/engines/sqlite/archive-layout.js';
import { createDemoSandbox, eventually, freePort, httpGet, type Sandbox } from '../support/cli.js';
import { startS3, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY } from '../support/s3.js';
import { countImages, insertImages } from '../support/sqlite.js';

const AUTH = 'archive-test-token-0123456789';

/** Times (epoch ms) of the segments archived so far for `database`, by generation. */
function segmentTimes(sandbox: Sandbox, database: string): Map<string, number[]> {
  const root = sandbox.path(`backups/${database}/archive`);
  const byGeneration = new Map<string, number[]>();
  if (!fs.existsSync(root)) return byGeneration;
  for (const generation of fs.readdirSync(root)) {
    if (generation.startsWith('.')) continue;
    for (const name of fs.readdirSync(path.join(root, generation))) {
      const key = parseArchiveKey(database, `${database}/archive/${generation}/${name}`);
      if (key.kind === 'generation') byGeneration.set(generation, byGeneration.get(generation) ?? []);
      if (key.kind === 'segment') byGeneration.set(generation, [...(byGeneration.get(generation) ?? []), key.committedMs]);
    }
  }
  return byGeneration;
}

const newestSegment = (sandbox: Sandbox, database: string) => Math.max(0, ...[...segmentTimes(sandbox, database).values()].flat());

interface Commit {
  rows: number;
  /** When the commit returned. */
  committedMs: number;
  /** When the archive had it: the time of the segment holding it. */
  archivedMs: number;
}

/** Commits one insert at a time, each only once the one before it is archived and the clock moved past its segment. */
async function commitSpacedApart(sandbox: Sandbox, file: string, batches: number[]): Promise<Commit[]> {
  const app = new Database(file);
  app.pragma('journal_mode = WAL');
  const commits: Commit[] = [];
  try {
    let rows = countImages(file);
    for (const batch of batches) {
      const before = newestSegment(sandbox, 'primary');
      insertImages(app, batch, 10_000 + rows);
      const committedMs = Date.now();
      rows += batch;
      await eventually(`a segment holding the commit of row ${rows}`, 30_000, async () => newestSegment(sandbox, 'primary') > Math.max(before, committedMs - 1));
      const archivedMs = newestSegment(sandbox, 'primary');
      commits.push({ rows, committedMs, archivedMs });
      // Spaced apart by more than the archive's resolution: the next commit comes after this segment's time.
      await eventually('the clock to pass the segment', 5_000, async () => Date.now() > archivedMs + 200);
    }
  } finally {
    app.close();
  }
  return commits;
}

function archiveConfig(sandbox: Sandbox, doc: ReturnType<typeof createDemoSandbox>['doc'], secondary: boolean): void {
  doc.server.auth_token = AUTH;
  doc.disaster_recovery.backup.enable_auto_backup = false;
  doc.disaster_recovery.backup.archive = { enabled: true };
  doc.disaster_recovery.failover.sync_interval = 0.2;
  doc.disaster_recovery.databases.secondary1!.enabled = secondary;
  sandbox.writeConfig(doc);
}

test('restore --to-time between two commits holds exactly the rows committed before it; list-times, status, verify and metrics show the archive', async (t) => {
  const port = await freePort();
  const { sandbox, doc } = createDemoSandbox(t, port, 20);
  archiveConfig(sandbox, doc, true);
  const sidecar = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  t.after(() => sidecar.stop('SIGKILL').catch(() => undefined));
  const primary = sandbox.path('data/images_primary.db');
  await eventually('the first generation', 30_000, async () => segmentTimes(sandbox, 'primary').size === 1);

  const commits = await commitSpacedApart(sandbox, primary, [1, 2, 3, 4]);

  for (const [i, commit] of commits.entries()) {
    const next = commits[i + 1];
    // A moment after this commit was archived and before the next one was made.
    const at = new Date(next ? Math.floor((commit.archivedMs + next.committedMs) / 2) : commit.archivedMs);
    const into = sandbox.path(`restored-${i}.db`);
    const restored = await sandbox.run(['restore', '--to-time', at.toISOString(), '--database', 'primary', '--into', into, '--json', '--config', 'config.yaml']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(countImages(into), commit.rows, `restored to ${at.toISOString()} (commit ${i + 1})`);
    const outcome = JSON.parse(restored.stdout) as { last_transaction_at: string; source: string };
    assert.equal(outcome.source, 'local');
    assert.ok(Date.parse(outcome.last_transaction_at) <= at.getTime());
  }
  // Before the first of these commits (right after the snapshot): the 20 rows the database started with.
  const firstGeneration = [...segmentTimes(sandbox, 'primary').keys()][0]!;
  const generationStart = Date.parse(JSON.parse(fs.readFileSync(sandbox.path(`backups/primary/archive/${firstGeneration}/generation.json`), 'utf8')).started_at as string);
  const early = await sandbox.run(['restore', '--to-time', new Date(generationStart).toISOString(), '--into', sandbox.path('early.db'), '--config', 'config.yaml']);
  assert.equal(early.code, 0, early.stderr);
  assert.equal(countImages(sandbox.path('early.db')), 20);

  // Outside the window: refused as an input error, naming the window.
  const before = await sandbox.run(['restore', '--to-time', '2001-01-01T00:00:00Z', '--into', sandbox.path('never.db'), '--config', 'config.yaml']);
  assert.equal(before.code, 2, before.stderr);
  assert.match(before.stderr, /outside the window one can restore into: \d{4}-.* \.\. /);
  assert.equal(fs.existsSync(sandbox.path('never.db')), false);
  const badTime = await sandbox.run(['restore', '--to-time', '2026-11-30 14:03', '--into', sandbox.path('never.db'), '--config', 'config.yaml']);
  assert.equal(badTime.code, 2);
  assert.match(badTime.stderr, /ISO 8601 time with a zone/);

  const listed = await sandbox.run(['restore', '--list-times', '--json', '--config', 'config.yaml']);
  assert.equal(listed.code, 0, listed.stderr);
  const windows = JSON.parse(listed.stdout) as Array<{ database: string; ranges: Array<{ from: string; to: string }> }>;
  const own = windows.find((w) => w.database === 'primary')!;
  assert.equal(own.ranges.length, 1);
  assert.equal(Date.parse(own.ranges[0]!.to), commits.at(-1)!.archivedMs);

  const api = await httpGet(`${sidecar.url}/api/status`, { authorization: `Bearer ${AUTH}` });
  await eventually('the window in /api/status', 30_000, async () => {
    const body = JSON.parse((await httpGet(`${sidecar.url}/api/status`, { authorization: `Bearer ${AUTH}` })).body) as { restore_windows?: Array<{ database: string; ranges: unknown[] }> };
    return body.restore_windows?.find((w) => w.database === 'primary')?.ranges.length === 1;
  }, () => api.body);
  const status = await sandbox.run(['status', '--config', 'config.yaml']);
  assert.match(status.stdout, /Point-in-time restore \(restore --to-time\):\nprimary \(sqlite\):\n {2}restorable \d{4}-/);

  const metrics = (await httpGet(`${sidecar.url}/metrics`)).body;
  const last = /^dr_archive_last_segment_timestamp_seconds\{database="primary"\} (\S+)$/m.exec(metrics);
  assert.ok(last, metrics);
  assert.ok(Number(last[1]) * 1000 >= commits.at(-1)!.archivedMs - 1);
  assert.match(metrics, /^dr_archive_segments_total\{database="primary"\} [1-9]/m);

  const verified = await sandbox.run(['verify', '--config', 'config.yaml']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /^archive of primary: ok {2}restored to .*integrity_check ok; images 30;/m);
  // Stopped before the sandbox goes: it would go on writing segments into it.
  await sidecar.stop();
});

test('a primary file replaced under the sidecar (no secondary) starts a new generation; the window shows the gap and its reason; restore over the configured file', async (t) => {
  const port = await freePort();
  const { sandbox, doc } = createDemoSandbox(t, port, 5);
  archiveConfig(sandbox, doc, false);
  const sidecar = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  t.after(() => sidecar.stop('SIGKILL').catch(() => undefined));
  const primary = sandbox.path('data/images_primary.db');
  await eventually('the first generation', 30_000, async () => segmentTimes(sandbox, 'primary').size === 1);
  const [first] = await commitSpacedApart(sandbox, primary, [2]);

  // An operator puts another file in place (10 rows), then tells the sidecar it was on purpose.
  const replacement = sandbox.writeSqlite('data/replacement.db', 10);
  fs.renameSync(replacement, primary);
  for (const side of ['-wal', '-shm']) fs.rmSync(`${primary}${side}`, { force: true });
  const accepted = await sandbox.run(['accept-file', 'primary', '--config', 'config.yaml']);
  assert.equal(accepted.code, 0, accepted.stderr);
  await eventually('a second generation', 60_000, async () => segmentTimes(sandbox, 'primary').size === 2, () => sidecar.output().stdout.slice(-3000));
  const [after] = await commitSpacedApart(sandbox, primary, [3]);

  const listed = await sandbox.run(['restore', '--list-times', '--database', 'primary', '--json', '--config', 'config.yaml']);
  const [window] = JSON.parse(listed.stdout) as Array<{ ranges: Array<{ from: string; to: string }>; gaps: Array<{ from: string; to: string; reason: string }> }>;
  assert.equal(window!.ranges.length, 2, listed.stdout);
  assert.equal(window!.gaps.length, 1, listed.stdout);
  assert.match(window!.gaps[0]!.reason, /a new generation started: continuity with primary was lost \(.*replaced/);
  assert.equal(Date.parse(window!.gaps[0]!.from), first!.archivedMs);
  const text = await sandbox.run(['restore', '--list-times', '--config', 'config.yaml']);
  assert.match(text.stdout, /^ {2}gap +\S+ \.\. \S+: a new generation started: continuity with primary was lost/m);

  // Each side of the gap restores to its own file's state; inside the gap is refused.
  for (const [at, rows] of [
    [first!.archivedMs, 7],
    [after!.archivedMs, 13],
  ] as const) {
    const into = sandbox.path(`at-${rows}.db`);
    const r = await sandbox.run(['restore', '--to-time', new Date(at).toISOString(), '--into', into, '--config', 'config.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(countImages(into), rows);
  }
  const inGap = new Date(Math.floor((Date.parse(window!.gaps[0]!.from) + Date.parse(window!.gaps[0]!.to)) / 2));
  const refused = await sandbox.run(['restore', '--to-time', inGap.toISOString(), '--into', sandbox.path('gap.db'), '--config', 'config.yaml']);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /outside the window/);

  // Over the configured database, as `restore` does: a safety backup first; the archive goes on (a restore is a transaction like any).
  const over = await sandbox.run(['restore', '--to-time', new Date(first!.archivedMs).toISOString(), '--database', 'primary', '--yes', '--config', 'config.yaml'], { timeoutMs: 60_000 });
  assert.equal(over.code, 0, over.stderr);
  assert.match(over.stdout, /^restored primary to \S+ over primary .*\n {2}previous contents saved to \S+pre-restore_/);
  assert.equal(countImages(primary), 7);
  await commitSpacedApart(sandbox, primary, [1]);
  const latest = await sandbox.run(['restore', '--to-time', new Date(newestSegment(sandbox, 'primary')).toISOString(), '--into', sandbox.path('latest.db'), '--config', 'config.yaml']);
  assert.equal(latest.code, 0, latest.stderr);
  assert.equal(countImages(sandbox.path('latest.db')), 8);
  await sidecar.stop();
});

test('restore --to-time from the S3 destination alone, with the local archive deleted', async (t) => {
  const s3 = await startS3();
  t.after(() => s3.close());
  const env = { S3_KEY: S3_ACCESS_KEY_ID, S3_SECRET: S3_SECRET_ACCESS_KEY };
  const port = await freePort();
  const { sandbox, doc } = createDemoSandbox(t, port, 5);
  doc.disaster_recovery.backup.offsite = [{ ...s3.offsite('prod/'), access_key_id: '${S3_KEY}', secret_access_key: '${S3_SECRET}' }];
  archiveConfig(sandbox, doc, false);
  const run = (args: string[]) => sandbox.run([...args, '--config', 'config.yaml'], { env, timeoutMs: 60_000 });
  const sidecar = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'], env });
  t.after(() => sidecar.stop('SIGKILL').catch(() => undefined));
  const primary = sandbox.path('data/images_primary.db');
  await eventually('the first generation', 30_000, async () => segmentTimes(sandbox, 'primary').size === 1);
  const commits = await commitSpacedApart(sandbox, primary, [1, 2, 3]);
  await eventually('the archive to arrive offsite', 120_000, async () => {
    const status = JSON.parse((await run(['status', '--json'])).stdout) as { offsite: Array<{ pending_files: number }> };
    return status.offsite[0]?.pending_files === 0;
  });
  await sidecar.stop();
  fs.rmSync(sandbox.path('backups/primary/archive'), { recursive: true });

  const listed = await run(['restore', '--list-times', '--json']);
  assert.equal(Date.parse((JSON.parse(listed.stdout) as Array<{ ranges: Array<{ to: string }> }>)[0]!.ranges[0]!.to), commits.at(-1)!.archivedMs);
  const at = new Date(Math.floor((commits[1]!.archivedMs + commits[2]!.committedMs) / 2));
  const restored = await run(['restore', '--to-time', at.toISOString(), '--into', sandbox.path('from-s3.db'), '--json']);
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal((JSON.parse(restored.stdout) as { source: string }).source, `s3://${s3.bucket}/prod`);
  assert.equal(countImages(sandbox.path('from-s3.db')), commits[1]!.rows);
});
