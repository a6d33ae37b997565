/**
 * The SQLite state store and its file (real files): a missing store is refused
 * unless created; a file removed or replaced at the path is written back by the
 * owner (its WAL leftovers moved aside, not replayed into the copy) and followed
 * by the other processes; the identity comparison as a table.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { comparePath } from '../../src/state/file-guard.js';
import { StateStoreMissing, StateStoreUnusable, stateLocationProblem } from '../../src/state/location.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { tempDir } from '../support/sqlite.js';

describe('the SQLite state store file', () => {
  const tmp = tempDir('dr-state-');
  after(() => tmp.cleanup());

  test('comparePath: same device and inode, another one, none', () => {
    const opened = { dev: 1n, ino: 10n };
    assert.equal(comparePath(opened, { dev: 1n, ino: 10n }), 'same');
    assert.equal(comparePath(opened, { dev: 1n, ino: 11n }), 'replaced');
    assert.equal(comparePath(opened, { dev: 2n, ino: 10n }), 'replaced');
    assert.equal(comparePath(opened, undefined), 'missing');
  });

  test('a missing store is refused unless created; created, it opens', async () => {
    const file = path.join(tmp.dir, 'missing', 'dr-state.db');
    assert.throws(() => new SqliteStateStore(file, { relativeTo: '/srv/app' }), (e: unknown) => e instanceof StateStoreMissing && /working directory \/srv\/app/.test(e.message));
    assert.equal(fs.existsSync(path.dirname(file)), false, 'nothing made on the way');
    const created = new SqliteStateStore(file, { create: true });
    await created.close();
    const opened = new SqliteStateStore(file);
    assert.equal((await opened.read()).epoch, 0);
    await opened.close();
  });

  test('not a database: one error naming the store', () => {
    const file = path.join(tmp.dir, 'garbage.db');
    fs.writeFileSync(file, 'x'.repeat(4096));
    assert.throws(() => new SqliteStateStore(file), (e: unknown) => e instanceof StateStoreUnusable && e.message.startsWith(`state store ${file} is not a SQLite database`));
  });

  test('locations that are no place for a store', () => {
    assert.match(stateLocationProblem('/proc/self/x.db') ?? '', /^is on \/proc/);
    assert.match(stateLocationProblem('/sys/x.db') ?? '', /^is on \/sys/);
    assert.match(stateLocationProblem(tmp.dir) ?? '', /^is a directory/);
    assert.equal(stateLocationProblem(path.join(tmp.dir, 'fine.db')), undefined);
  });

  test('a watch moves with a follower to the file written back at the path', async () => {
    const file = path.join(tmp.dir, 'watched', 'dr-state.db');
    const owner = new SqliteStateStore(file, { create: true });
    const follower = new SqliteStateStore(file);
    const seen: number[] = [];
    const watch = follower.watch((state) => seen.push(state.epoch));
    try {
      watch.refresh!();
      assert.deepEqual(seen, [0]);
      fs.unlinkSync(file);
      await owner.checkLocation('write-back');
      await follower.checkLocation('follow');
      // Changes to the file now at the path reach the watch (its poll was on the removed file).
      await owner.commitSwitch(0, 'primary', 'secondary1', 'manual', Date.now());
      watch.refresh!();
      assert.deepEqual(seen, [0, 1]);
      await owner.commitSwitch(1, 'secondary1', 'primary', 'manual', Date.now());
      watch.refresh!();
      assert.deepEqual(seen, [0, 1, 2]);
    } finally {
      watch.stop();
      await follower.close();
      await owner.close();
    }
  });

  for (const how of ['removed', 'replaced'] as const) {
    test(`${how} under the owner: written back; a follower reads the same state afterwards`, async () => {
      const file = path.join(tmp.dir, how, 'dr-state.db');
      const owner = new SqliteStateStore(file, { create: true });
      const follower = new SqliteStateStore(file);
      try {
        await owner.commitSwitch(0, 'primary', 'secondary1', 'manual', Date.now());
        await owner.appendHistory({ epoch: 1, startedAt: 'a', finishedAt: 'b', from: 'primary', to: 'secondary1', trigger: 'manual', reason: 'r', result: 'success', error: null, dataSync: null, phases: {} });
        if (how === 'removed') fs.unlinkSync(file);
        else {
          const other = path.join(tmp.dir, `${how}-other.db`);
          new SqliteStateStore(other, { create: true }).closeNow();
          fs.renameSync(other, file);
        }
        // A follower keeps what it has open while nothing (or a stranger) is at the path, and never writes back.
        if (how === 'removed') assert.equal(await follower.checkLocation('follow'), undefined);

        const said = await owner.checkLocation('write-back');
        assert.match(said ?? '', new RegExp(`was ${how} while the sidecar held it open`));
        assert.equal(await owner.checkLocation('write-back'), undefined, 'once is enough');
        const aside = fs.readdirSync(path.dirname(file)).filter((f) => f.includes('.replaced-'));
        if (how === 'replaced') assert.ok(aside.some((f) => !/-(wal|shm)$/.test(f)), `the replacement kept: ${aside.join(', ')}`);
        else assert.ok(aside.every((f) => /-(wal|shm)$/.test(f)), `only the removed file's WAL leftovers moved aside: ${aside.join(', ')}`);

        // A fresh connection (a new CLI) reads the owner's state from a sound file.
        const fresh = new Database(file, { readonly: true });
        assert.equal(fresh.pragma('integrity_check', { simple: true }), 'ok');
        fresh.close();
        const cli = new SqliteStateStore(file);
        assert.equal((await cli.read()).primary, 'secondary1');
        assert.equal((await cli.history(10)).length, 1);
        await cli.close();

        await follower.checkLocation('follow');
        await owner.commitSwitch(1, 'secondary1', 'primary', 'manual', Date.now());
        assert.deepEqual(await follower.read(), await owner.read(), 'owner and follower on one file');
      } finally {
        await follower.close();
        await owner.close();
      }
    });
  }
});
