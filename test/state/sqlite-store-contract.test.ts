import path from 'node:path';
import { after, describe } from 'node:test';
import { SqliteStateStore } from '../../src/state/sqlite-store.js';
import { tempDir } from '../support/sqlite.js';
import { clusterContract, storeContract } from './store-contract.js';

describe('the SQLite state store keeps the StateStore contract', () => {
  const tmp = tempDir('dr-store-contract-');
  after(() => tmp.cleanup());
  let files = 0;
  const factory = () => {
    const file = path.join(tmp.dir, `state-${++files}.db`);
    return { open: () => new SqliteStateStore(file, { create: true }) };
  };
  storeContract(factory);
  clusterContract(factory);
});
