/**
 * A restore killed with SIGKILL leaves a database-sized temporary file (with
 * its -wal and -shm) beside the live SQLite database; the next sidecar start,
 * restore and backup remove such leftovers, and never the temporary file of a
 * restore at work right now in another process (held still with SIGSTOP).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { CLI_BIN, cliEnv, createDemoSandbox, eventually, freePort, logLines, stackLines, type CliResult, type Sandbox } from '../support/cli.js';
import { countImages } from '../support/sqlite.js';
import { filesIn } from '../backup/fixtures.js';

const show = (r: CliResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const ROWS = 25_000;

function assertExit(r: CliResult, code: number): void {
  assert.equal(r.code, code, show(r));
  assert.deepEqual(stackLines(r.stderr), [], `stack trace on stderr:\n${r.stderr}`);
}

/** `restore FILE --yes` as a subprocess of its own, and how it ended. */
function startRestore(sandbox: Sandbox, file: string, ...extra: string[]): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI_BIN, 'restore', file, '--yes', ...extra, '--config', 'config.yaml'], { cwd: sandbox.dir, env: cliEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}

/** Polls often: the window in which a file exists may be short. */
async function waitForFile(what: string, timeoutMs: number, found: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!found()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('SIGKILL mid-restore: the leftovers beside the database go at the next start, restore and backup; a live restore keeps its file', { timeout: 300_000 }, async (t) => {
  const port = await freePort();
  const { sandbox, doc } = createDemoSandbox(t, port, 200);
  doc.disaster_recovery.backup = { ...doc.disaster_recovery.backup, enable_auto_backup: false };
  sandbox.writeConfig(doc);
  const dataDir = sandbox.path('data');
  const live = sandbox.path('data/images_primary.db');
  const db = new Database(live);
  db.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${ROWS})
           INSERT INTO images (url, source_page) SELECT 'https://big.example/' || x, hex(randomblob(1200)) FROM c`);
  db.close();
  const made = await sandbox.run(['backup', '--name', 'big', '--json', '--config', 'config.yaml'], { timeoutMs: 120_000 });
  assertExit(made, 0);
  const backup = (JSON.parse(made.stdout) as { path: string }).path;
  // An application file in the same folder, named like nothing of ours: never touched.
  fs.writeFileSync(path.join(dataDir, '.images_other.db.tmp-1-1'), 'not ours');
  const temporariesOf = (pid: number) => filesIn(dataDir).filter((f) => f.startsWith(`.images_primary.db.tmp-${pid}-`));

  // A restore killed once its temporary copy is written and opened (its -shm exists): the leftovers stay behind.
  const killed = startRestore(sandbox, backup);
  await waitForFile('the restore\'s temporary database and its -shm', 120_000, () => temporariesOf(killed.child.pid!).some((f) => f.endsWith('-shm')));
  killed.child.kill('SIGKILL');
  assert.equal((await killed.exited).signal, 'SIGKILL');
  const left = temporariesOf(killed.child.pid!);
  const main = left.find((f) => !/-(wal|shm|journal)$/.test(f));
  assert.ok(main && fs.statSync(path.join(dataDir, main)).size > 10_000_000, `a database-sized temporary file is left: ${left.join(', ')}`);
  assert.ok(left.some((f) => f.endsWith('-shm')), left.join(', '));

  // The next start of the sidecar removes them, and says so.
  let monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  await eventually('the killed restore\'s leftovers removed at start', 15_000, async () => temporariesOf(killed.child.pid!).length === 0, () => filesIn(dataDir).join(', '));
  const stopped = await monitor.stop();
  const lines = logLines(stopped.stdout).filter((l) => /leftovers of an interrupted restore or copy of primary removed/.test(String(l.msg ?? '')));
  assert.equal(lines.length, 1, stopped.stdout);

  // Leftovers named after the killed (dead) restore, while another restore is at work (held still once its temporary file exists).
  const leave = () => {
    const base = path.join(dataDir, `.images_primary.db.tmp-${killed.child.pid}-${Date.now() - 1000}`);
    for (const side of ['', '-wal', '-shm']) fs.writeFileSync(base + side, 'partial');
  };
  const working = startRestore(sandbox, backup, '--skip-safety-backup');
  cleanupProcess(t, working.child);
  await waitForFile('the live restore\'s temporary file', 60_000, () => temporariesOf(working.child.pid!).length > 0);
  working.child.kill('SIGSTOP');
  const workingFiles = temporariesOf(working.child.pid!);
  const stillWorking = () => {
    for (const f of workingFiles) assert.ok(fs.existsSync(path.join(dataDir, f)), `the live restore's ${f} is still there`);
  };

  // A backup removes the dead one's leftovers, not the live restore's file.
  leave();
  assertExit(await sandbox.run(['backup', '--config', 'config.yaml'], { timeoutMs: 120_000 }), 0);
  assert.deepEqual(temporariesOf(killed.child.pid!), []);
  stillWorking();
  // So does a sidecar start.
  leave();
  monitor = await sandbox.startMonitoring({ port, args: ['--config', 'config.yaml'] });
  await eventually('the leftovers removed at start', 15_000, async () => temporariesOf(killed.child.pid!).length === 0, () => filesIn(dataDir).join(', '));
  await monitor.stop();
  stillWorking();

  // The live restore goes on and finishes with every row: its file was never taken from it.
  working.child.kill('SIGCONT');
  const finished = await working.exited;
  assert.equal(finished.code, 0, finished.stderr);
  assert.equal(countImages(live), ROWS + 200);
  assert.deepEqual(temporariesOf(working.child.pid!), []);

  // The next restore removes leftovers before it writes its own.
  leave();
  assertExit(await sandbox.run(['restore', backup, '--yes', '--skip-safety-backup', '--config', 'config.yaml'], { timeoutMs: 120_000 }), 0);
  assert.deepEqual(temporariesOf(killed.child.pid!), []);
  assert.ok(fs.existsSync(path.join(dataDir, '.images_other.db.tmp-1-1')), 'a file that is not a leftover of this database stays');
});

/** A process held with SIGSTOP must not outlive a failed test. */
function cleanupProcess(t: { after(fn: () => void): void }, child: ChildProcess): void {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  });
}
