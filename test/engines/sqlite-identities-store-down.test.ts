/**
 * A sidecar that starts while its state store does not answer (etcd without
 * quorum): the identities cannot be loaded for its first probes, and must be
 * loaded by a later probe once the store answers, not kept failed forever.
 * A real SQLite store and file; the store is made to fail its first read.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { observeSqliteFile, SqliteIdentities } from '../../src/engines/sqlite-identities.js';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { memoryLogger } from '../support/failover.js';
import { makeImagesDb, tempDir } from '../support/sqlite.js';

const tmp = tempDir('dr-identities-down-');
after(() => tmp.cleanup());

test('identities: a first load that failed is tried again by the next probe', async () => {
  const store = new SqliteStateStore(path.join(tmp.dir, 'state.db'), { create: true });
  const file = path.join(tmp.dir, 'primary.db');
  makeImagesDb(file, 3);
  const read = store.sqliteIdentities.bind(store);
  let failing = true;
  store.sqliteIdentities = () => (failing ? Promise.reject(new Error('etcd did not answer')) : read());
  const identities = new SqliteIdentities(store, memoryLogger().log);
  const observed = observeSqliteFile(file);
  await assert.rejects(identities.judge('primary', file, observed, true), /etcd did not answer/);
  failing = false;
  assert.equal(await identities.judge('primary', file, observeSqliteFile(file), true), undefined, 'judged once the store answers');
  await store.close();
});
