/**
 * SQLite secondaries follow the primary's WAL, on real files, with the
 * application writing from a process of its own: a failover after the primary's
 * file is deleted loses no acknowledged row the sidecar could still read;
 * readers of a secondary never see half of a transaction; the application's own
 * checkpoints, a VACUUM, a sidecar restart and a kill -9 of the sidecar leave
 * the secondaries equal to the primary.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { REPO_ROOT, freePort, startMonitoring } from '../support/cli.js';
import { waitFor } from '../support/failover.js';
import {
  childWriter,
  imagesAndIntegrity,
  sample,
  sleep,
  sqliteCluster,
  startSidecar,
  waitForHistory,
  Writer,
  lostIds,
  imageIds,
} from '../support/sqlite-cluster.js';

/** Waits until `secondary` holds exactly the rows of `primary`, both with integrity ok. */
async function waitForEqual(primary: string, secondary: string, describe: () => string = () => ''): Promise<void> {
  let last = '';
  await waitFor(
    `${secondary} equal to ${primary}`,
    60_000,
    () => {
      const p = imagesAndIntegrity(primary);
      const s = imagesAndIntegrity(secondary);
      last = `primary ${p.ids.length} rows (${p.integrity}), secondary ${s.ids.length} rows (${s.integrity})\n${describe()}`;
      return p.integrity === 'ok' && s.integrity === 'ok' && p.ids.length === s.ids.length && p.ids.every((id, i) => s.ids[i] === id);
    },
    100,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: ${last}`);
  });
}

test('WAL shipping: the primary deleted under a writer process; the failover ships what the sidecar still reads, no acknowledged row is lost', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  // The first generation: a whole copy, then frames.
  await waitFor('secondary1 follows', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  const writer = childWriter(cluster.file('primary'), 1000);
  cluster.defer(() => writer.stop());
  await waitFor('rows shipped', 20_000, () => imageIds(cluster.file('secondary1')).has(1050));

  for (const side of ['', '-wal', '-shm']) fs.rmSync(cluster.file('primary') + side, { force: true });
  const deletedAt = Date.now();
  const record = await waitForHistory(sidecar.service, (r) => r.result === 'success' && r.to === 'secondary1', 30_000, () => sidecar.logs.tail());
  await writer.stop();
  const present = imageIds(cluster.file('secondary1'));
  const ackedBefore = [...writer.acks].filter(([, at]) => at < deletedAt).map(([id]) => id);
  assert.ok(ackedBefore.length > 50, `${ackedBefore.length} rows acknowledged before the deletion`);
  assert.deepEqual(lostIds(ackedBefore, present), [], `every row acknowledged before the file was deleted is on secondary1; ${record.dataSync?.detail}`);
  assert.equal(record.dataSync?.method, 'wal-shipping', JSON.stringify(record.dataSync));
  assert.match(record.dataSync?.detail ?? '', /not shipped: 0 committed transactions, 0 s/);
  assert.match(record.dataSync?.detail ?? '', /deleted file/);
  assert.equal(imagesAndIntegrity(cluster.file('secondary1')).integrity, 'ok');
  t.diagnostic(`${ackedBefore.length} rows before the deletion, all on secondary1; ${record.dataSync?.detail}`);
});

test('WAL shipping: the primary header overwritten with garbage under a writer process: what can still be read is shipped, the rest is counted in the history', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await waitFor('secondary1 follows', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  const writer = childWriter(cluster.file('primary'), 1000);
  cluster.defer(() => writer.stop());
  await waitFor('rows shipped', 20_000, () => imageIds(cluster.file('secondary1')).has(1050));
  // Garbage over the header, in place (the WAL, with the last commits, stays).
  const fd = fs.openSync(cluster.file('primary'), 'r+');
  fs.writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 0);
  fs.closeSync(fd);
  await writer.stop();
  const record = await waitForHistory(sidecar.service, (r) => r.result === 'success' && r.to === 'secondary1', 30_000, () => sidecar.logs.tail());
  const present = imageIds(cluster.file('secondary1'));
  const missing = lostIds(writer.acks.keys(), present);
  const counted = Number(/not shipped: (\d+) committed transactions/.exec(record.dataSync?.detail ?? '')?.[1]);
  // With page 1 in the WAL, SQLite still reads the database: the sidecar fences it and ships the rest.
  // One row per transaction: what the history counts is what is missing (a commit whose acknowledgement
  // the writer did not print is counted, not acknowledged).
  assert.ok(counted >= missing.length && counted <= missing.length + 1, `counted ${counted}, missing ${missing.length}: ${record.dataSync?.detail}`);
  if (record.dataSync?.complete) assert.deepEqual(missing, []);
  assert.equal(imagesAndIntegrity(cluster.file('secondary1')).integrity, 'ok');
  t.diagnostic(`${missing.length} acknowledged rows missing; history: ${record.dataSync?.detail}`);
});

test('WAL shipping: the primary deleted while secondary1 is locked: the history counts the transactions that could not be shipped, and they are what is missing', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await waitFor('secondary1 follows', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  const writer = childWriter(cluster.file('primary'), 1000);
  cluster.defer(() => writer.stop());
  await waitFor('rows shipped', 20_000, () => imageIds(cluster.file('secondary1')).has(1050));
  // A writer of its own holds secondary1 (a stalled secondary): nothing can be applied to it.
  const holder = new Database(cluster.file('secondary1'));
  cluster.defer(() => holder.open && holder.close());
  holder.exec('BEGIN IMMEDIATE');
  await sleep(1500);
  for (const side of ['', '-wal', '-shm']) fs.rmSync(cluster.file('primary') + side, { force: true });
  await writer.stop();
  const record = await waitForHistory(sidecar.service, (r) => r.result === 'success' && r.to === 'secondary1', 60_000, () => sidecar.logs.tail());
  holder.exec('ROLLBACK');
  holder.close();
  const missing = lostIds(writer.acks.keys(), imageIds(cluster.file('secondary1')));
  const counted = Number(/not shipped: (\d+) committed transactions/.exec(record.dataSync?.detail ?? '')?.[1]);
  assert.equal(record.dataSync?.complete, false, record.dataSync?.detail);
  assert.ok(missing.length > 0, 'rows were written while secondary1 was locked');
  assert.ok(counted >= missing.length && counted <= missing.length + 1, `counted ${counted}, missing ${missing.length}: ${record.dataSync?.detail}`);
  assert.equal(imagesAndIntegrity(cluster.file('secondary1')).integrity, 'ok');
  t.diagnostic(`${missing.length} acknowledged rows missing; history: ${record.dataSync?.detail}`);
});

test('WAL shipping: a reader process on secondary1 never errors and never sees half of a two-row transaction', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 0.2 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await waitFor('secondary1 follows', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  const writer = childWriter(cluster.file('primary'), 1_000_000, { pairs: true, gapMs: 1 });
  cluster.defer(() => writer.stop());
  // Reads in a loop until stdin closes; prints "reads odd errors maxSeen" when it ends.
  const script = `
    import Database from 'better-sqlite3';
    const db = new Database(process.argv[1], { fileMustExist: true, timeout: 10000 });
    const count = db.prepare('SELECT count(*) AS n, max(id) AS top FROM images WHERE id >= 1000000');
    let stop = false, reads = 0, odd = 0, errors = [], top = 0;
    process.stdin.on('close', () => (stop = true)).resume();
    while (!stop) {
      try {
        const row = count.get();
        reads++;
        if (row.n % 2 !== 0) odd++;
        top = Math.max(top, row.top ?? 0);
      } catch (error) {
        errors.push(error.code + ' ' + error.message);
      }
      await new Promise((r) => setImmediate(r));
    }
    process.stdout.write(JSON.stringify({ reads, odd, errors: errors.slice(0, 5), errorCount: errors.length, top }));`;
  const reader = spawn(process.execPath, ['--input-type=module', '-e', script, cluster.file('secondary1')], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<void>((resolve) => reader.once('close', () => resolve()));
  cluster.defer(async () => {
    reader.stdin.end();
    await done;
  });
  const target = 1_000_000 + 2000;
  await waitFor('2000 rows shipped', 60_000, () => imageIds(cluster.file('secondary1')).has(target), 100);
  reader.stdin.end();
  await done;
  const seen = JSON.parse(out) as { reads: number; odd: number; errors: string[]; errorCount: number; top: number };
  assert.equal(seen.errorCount, 0, `reader errors: ${seen.errors.join('; ')}`);
  assert.equal(seen.odd, 0, `${seen.odd} of ${seen.reads} reads saw half of a transaction`);
  assert.ok(seen.reads > 100 && seen.top > 1_000_000, `${seen.reads} reads, newest id seen ${seen.top}`);
  t.diagnostic(`${seen.reads} reads of secondary1 while it followed, none odd, no error`);
});

test("WAL shipping: the application's wal_checkpoint(TRUNCATE), a VACUUM and a sidecar restart leave secondary1 equal to the primary", async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 0.2 } });
  let sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await waitFor('secondary1 follows', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  const writer = childWriter(cluster.file('primary'), 1000);
  cluster.defer(() => writer.stop());
  await waitFor('rows shipped', 20_000, () => imageIds(cluster.file('secondary1')).has(1100), 50);

  const app = new Database(cluster.file('primary'), { timeout: 5000 });
  cluster.defer(() => app.close());
  const [checkpoint] = app.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
  app.exec('DELETE FROM images WHERE id % 2 = 0 AND id < 1100');
  app.exec('VACUUM');
  await waitFor('rows after the VACUUM shipped', 20_000, () => {
    const newest = Math.max(...writer.acks.keys());
    return imageIds(cluster.file('secondary1')).has(newest) ? true : undefined;
  });
  const generations = sample(await sidecar.service.metrics.expose(), 'dr_replication_generations_total{database="secondary1"}');
  assert.equal(generations, 1, `one generation while the sidecar ran (the application's checkpoint got busy=${checkpoint!.busy}); log:\n${sidecar.logs.tail()}`);

  await sidecar.stop();
  await sleep(300);
  sidecar = await startSidecar(cluster.load());
  await waitFor('a new generation after the restart', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  await writer.stop();
  await waitForEqual(cluster.file('primary'), cluster.file('secondary1'), () => sidecar.logs.tail());
  assert.equal(fs.existsSync(`${cluster.file('secondary1')}-journal`), false);
  // Caught up and nothing new: the lag is 0, not the age of some copy.
  await waitFor('no lag once caught up', 10_000, async () => sample(await sidecar.service.metrics.expose(), 'dr_replication_lag_seconds{database="secondary1"}') === 0);
});

test('SQLite replication: a primary not in WAL mode keeps whole-file copies, with a warning in the log and in status naming PRAGMA journal_mode=WAL', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 0.2 } });
  const db = new Database(cluster.file('primary'));
  db.pragma('journal_mode = DELETE');
  db.prepare("INSERT INTO images (id, url) VALUES (5000, 'https://example.com/rollback.jpg')").run();
  db.close();
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await waitFor('a whole copy', 20_000, () => imageIds(cluster.file('secondary1')).has(5000));
  const primary = sidecar.service.status().databases.find((d) => d.name === 'primary')!;
  assert.match(primary.replication_warning ?? '', /not in WAL mode.*PRAGMA journal_mode=WAL/);
  assert.ok(sidecar.logs.lines.some((l) => /not in WAL mode.*PRAGMA journal_mode=WAL/.test(l.msg)), sidecar.logs.tail());
  const status = await cluster.cli('status');
  assert.match(status.stdout, /WARNING primary: .*PRAGMA journal_mode=WAL/);
  assert.equal(sidecar.service.status().databases.find((d) => d.name === 'secondary1')!.replication_warning, null);
});

test('WAL shipping: kill -9 of the sidecar while it ships; the next reader finishes or ignores the apply, the restarted sidecar makes secondary1 equal', async (t) => {
  const port = await freePort();
  const cluster = sqliteCluster(t, { failover: { sync_interval: 0.2 } });
  cluster.doc.server.port = port;
  const configPath = cluster.sandbox.writeConfig(cluster.doc);
  const writer = childWriter(cluster.file('primary'), 1000, { gapMs: 0 });
  cluster.defer(() => writer.stop());
  for (let round = 0; round < 3; round++) {
    const monitor = await startMonitoring({ port, args: ['--config', configPath], cwd: cluster.sandbox.dir });
    cluster.defer(() => monitor.stop('SIGKILL').catch(() => undefined));
    await waitFor('secondary1 takes frames', 30_000, () => {
      const ids = imageIds(cluster.file('secondary1'));
      return ids.size > 20 + round * 50 ? true : undefined;
    }, 50);
    await sleep(137 * (round + 1)); // a different moment of the shipping cycle each round
    await monitor.stop('SIGKILL');
    // Whatever the kill interrupted: a reader sees a whole database (SQLite plays back a hot journal first).
    const after = imagesAndIntegrity(cluster.file('secondary1'));
    assert.equal(after.integrity, 'ok', `round ${round}`);
  }
  await writer.stop();
  const monitor = await startMonitoring({ port, args: ['--config', configPath], cwd: cluster.sandbox.dir });
  cluster.defer(() => monitor.stop());
  await waitForEqual(cluster.file('primary'), cluster.file('secondary1'), () => monitor.output().stderr.slice(-2000));
  const acked = [...writer.acks.keys()];
  assert.deepEqual(lostIds(acked, new Set(imagesAndIntegrity(cluster.file('secondary1')).ids)), []);
});

test('WAL shipping: switchover there and back under the application: nothing lost, the rest shipped under the fence', async (t) => {
  const cluster = sqliteCluster(t, { failover: { sync_interval: 1 } });
  const sidecar = await startSidecar(cluster.load());
  cluster.defer(() => sidecar.stop());
  await waitFor('secondary1 follows', 20_000, () => sidecar.service.copies.lastCopyAt('secondary1') !== undefined);
  const writer = await Writer.open(cluster.load(), 1000);
  cluster.defer(() => writer.stop());
  writer.start();
  await writer.waitForAcks('primary', 100);
  const there = await sidecar.service.failover({ trigger: 'manual', reason: 'test', target: 'secondary1', ifPrimaryAnswers: 'switch over' });
  assert.equal(there.dataSync?.method, 'wal-shipping', JSON.stringify(there.dataSync));
  assert.equal(there.dataSync?.complete, true);
  await writer.waitForAcks('secondary1', 100);
  await waitFor('primary follows secondary1', 30_000, () => sidecar.service.copies.lastCopyAt('primary') !== undefined);
  const back = await sidecar.service.failover({ trigger: 'manual', reason: 'test', target: 'primary', ifPrimaryAnswers: 'switch over' });
  assert.equal(back.dataSync?.method, 'wal-shipping', JSON.stringify(back.dataSync));
  await writer.waitForAcks('primary', 100);
  await writer.stop();
  const present = imageIds(cluster.file('primary'));
  assert.deepEqual(lostIds(writer.ids(), present), [], 'no acknowledged row lost');
  const journalMode = new Database(cluster.file('primary'), { readonly: true });
  try {
    assert.equal(journalMode.pragma('journal_mode', { simple: true }), 'wal', 'the promoted database is in WAL mode again');
  } finally {
    journalMode.close();
  }
  t.diagnostic(`there: ${there.dataSync?.detail}; back: ${back.dataSync?.detail}`);
});
