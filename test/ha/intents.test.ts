/**
 * How a process that is not the leader gets something done: by the live leader
 * through an intent, or, when nobody leads, under a leadership of its own for
 * the moment. A real SQLite state store; the "leader" is this test claiming intents.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConflictError, InputError } from '../../src/errors.js';
import { actAsLeader, failureOutcome, successOutcome, type ActingDeps } from '../../src/ha/intents.js';
import { takeLeadership } from '../../src/state/leadership.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { waitFor } from '../support/failover.js';
import { tempDir } from '../support/sqlite.js';

describe('acting as the leader', () => {
  const tmp = tempDir('dr-intents-');
  after(() => tmp.cleanup());
  let n = 0;
  const open = () => new SqliteStateStore(path.join(tmp.dir, `s${++n}.db`), { create: true });
  const deps = (store: SqliteStateStore, claimWaitMs = 5_000): ActingDeps => ({
    store,
    ttlMs: 5_000,
    wait: { claimWaitMs, finishWaitMs: 10_000, everyMs: 20 },
    submitter: 'command@test',
    ownLeadership: () => undefined,
    isSidecar: false,
  });

  test('nobody leads: the command takes the lease for the moment of its action (a sidecar starting meanwhile is kept out), then gives it back', async () => {
    const store = open();
    let heldBy: string | undefined;
    let sidecarGotIt: boolean | undefined;
    const result = await actAsLeader(deps(store), 'auto_failover', { enabled: false }, async (leadership) => {
      heldBy = (await store.leaseHolder())?.holder;
      sidecarGotIt = (await takeLeadership(store, 'sidecar/1.1', 5_000)) !== undefined;
      assert.ok(leadership.stillLeader());
      return 'done here';
    });
    assert.equal(result, 'done here');
    assert.equal(heldBy, 'command@test:auto_failover');
    assert.equal(sidecarGotIt, false);
    assert.equal(await store.leaseHolder(), undefined, 'released');
    await store.close();
  });

  test('a live leader: the request becomes an intent, carried out by the leader, its result and its errors returned as if run here', async () => {
    const store = open();
    const leader = await takeLeadership(store, 'sidecar-a/1.1', 60_000);
    assert.ok(leader);
    let ranHere = false;
    const serve = async (outcome: (kind: string) => ReturnType<typeof successOutcome>) => {
      const intent = await waitFor('an intent', 10_000, () => store.claimIntent(leader.holder));
      await store.finishIntent(intent.id, outcome(intent.kind));
    };
    const [ok] = await Promise.all([
      actAsLeader(deps(store), 'reinstate', { name: 'primary' }, async () => void (ranHere = true)),
      serve((kind) => successOutcome(`${kind} done`, { reinstated: 'primary' })),
    ]);
    assert.deepEqual(ok, { reinstated: 'primary' });
    assert.equal(ranHere, false, 'not run by the submitter');

    const [input] = await Promise.allSettled([
      actAsLeader(deps(store), 'reinstate', { name: 'nosuch' }, async () => undefined),
      serve(() => failureOutcome(new InputError('unknown database "nosuch"'))),
    ]);
    assert.ok(input.status === 'rejected' && input.reason instanceof InputError && /unknown database "nosuch"/.test(input.reason.message), 'an input error stays one (exit 2, HTTP 400)');
    const [conflict] = await Promise.allSettled([
      actAsLeader(deps(store), 'failover', { target: 'b' }, async () => undefined),
      serve(() => failureOutcome(new ConflictError('another failover is in progress (x); nothing changed'))),
    ]);
    assert.ok(conflict.status === 'rejected' && conflict.reason instanceof ConflictError && /another failover is in progress/.test(conflict.reason.message));
    await leader.release();
    await store.close();
  });

  test('a leader that never claims: a clear error within the wait, nothing done', async () => {
    const store = open();
    const leader = await takeLeadership(store, 'frozen/1.1', 60_000);
    assert.ok(leader);
    await assert.rejects(
      actAsLeader(deps(store, 300), 'backup', {}, async () => 'ran here'),
      /no leader took the backup request within 0.3 s \(the lease is held by frozen\/1.1, which did not answer\); nothing was done/,
    );
    await leader.release();
    await store.close();
  });
});
