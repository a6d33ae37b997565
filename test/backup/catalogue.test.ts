import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Catalogue } from '../../src/backup/catalogue.js';
import type { Manifest } from '../../src/backup/manifest.js';
import { tempDir } from '../support/sqlite.js';

function manifestFor(file: string, content: string, created: string, extra: Partial<Manifest> = {}): Manifest {
  return {
    version: 1,
    file,
    database: 'primary',
    engine: 'sqlite',
    format: 'sqlite-database',
    compression: 'none',
    compression_level: null,
    name: 'backup',
    trigger: 'manual',
    created_at: created,
    finished_at: created,
    duration_seconds: 1,
    size_bytes: Buffer.byteLength(content),
    sha256: '0'.repeat(64),
    source: { url: 'sqlite:///x.db', size_bytes: 10 },
    tables: { images: 1 },
    ...extra,
  };
}

describe('Catalogue', () => {
  let dir: string;
  let cleanup: () => void;
  let catalogue: Catalogue;
  let folder: string;
  const put = (name: string, content: string, created: string, extra: Partial<Manifest> = {}, withFile = true) => {
    if (withFile) fs.writeFileSync(path.join(folder, name), content);
    fs.writeFileSync(path.join(folder, `${name}.manifest.json`), JSON.stringify(manifestFor(name, content, created, extra)));
  };

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('dr-catalogue-'));
    catalogue = new Catalogue(dir);
    folder = catalogue.dirOf('primary');
    fs.mkdirSync(folder, { recursive: true });
  });
  afterEach(() => cleanup());

  test('entries newest first; each problem named; only complete ones are good', () => {
    put('a_20240101T000000Z.db', 'aaaa', '2024-01-01T00:00:00Z');
    put('b_20240102T000000Z.db', 'bbbb', '2024-01-02T00:00:00Z', {}, false);
    put('c_20240103T000000Z.db', 'cccc', '2024-01-03T00:00:00Z', { size_bytes: 99 });
    put('d_20240104T000000Z.db', 'dddd', '2024-01-04T00:00:00Z', { verification: { at: '2024-01-05T00:00:00Z', ok: false, detail: 'checksum mismatch' } });
    put('e_20240105T000000Z.db', 'eeee', '2024-01-05T00:00:00Z', { file: 'other.db' });
    fs.writeFileSync(path.join(folder, 'f_20240106T000000Z.db.manifest.json'), '{not json');
    fs.writeFileSync(path.join(folder, 'f_20240106T000000Z.db'), 'ffff');
    fs.writeFileSync(path.join(folder, 'copied-by-hand.db'), 'gggg');
    fs.writeFileSync(path.join(folder, '.x.db.tmp-1-2'), 'partial');

    const entries = catalogue.list('primary');
    const problems = Object.fromEntries(entries.map((e) => [path.basename(e.path), e.problem ?? 'good']));
    assert.deepEqual(Object.keys(problems), [
      'e_20240105T000000Z.db',
      'd_20240104T000000Z.db',
      'c_20240103T000000Z.db',
      'b_20240102T000000Z.db',
      'a_20240101T000000Z.db',
      'f_20240106T000000Z.db',
      'copied-by-hand.db',
    ]);
    assert.equal(problems['a_20240101T000000Z.db'], 'good');
    assert.equal(problems['b_20240102T000000Z.db'], 'backup file is missing');
    assert.match(problems['c_20240103T000000Z.db']!, /file is 4 bytes, its manifest says 99/);
    assert.match(problems['d_20240104T000000Z.db']!, /failed verification .*checksum mismatch/);
    assert.match(problems['e_20240105T000000Z.db']!, /describes "other.db"/);
    assert.match(problems['f_20240106T000000Z.db']!, /manifest is not JSON/);
    assert.match(problems['copied-by-hand.db']!, /no manifest/);
    assert.equal(path.basename(catalogue.newestGood('primary')!.path), 'a_20240101T000000Z.db');
  });

  test('the cached list follows the folder: a new backup shows up at once', () => {
    put('a_20240101T000000Z.db', 'aaaa', '2024-01-01T00:00:00Z');
    assert.equal(path.basename(catalogue.newestGood('primary')!.path), 'a_20240101T000000Z.db');
    put('b_20240102T000000Z.db', 'bbbb', '2024-01-02T00:00:00Z');
    assert.equal(path.basename(catalogue.newestGood('primary')!.path), 'b_20240102T000000Z.db');
  });

  test('leftovers: temporary files of dead processes and old manifests without a file go; nothing else', () => {
    const dead = spawnSync('true').pid!;
    const deadTemp = path.join(folder, `.x_20240101T000000Z.db.gz.tmp-${dead}-${Date.now()}`);
    const deadJournal = path.join(folder, `.primary.db.snapshot.tmp-${dead}-${Date.now()}-journal`);
    const ownTemp = path.join(folder, `.y_20240101T000000Z.db.gz.tmp-${process.pid}-${Date.now()}`);
    const staleOwn = path.join(folder, `.z_20240101T000000Z.db.gz.tmp-${process.pid}-1000`);
    for (const f of [deadTemp, deadJournal, ownTemp, staleOwn]) fs.writeFileSync(f, 'partial');
    put('orphan_20240101T000000Z.db', 'oooo', '2024-01-01T00:00:00Z', {}, false);
    put('fresh_20240101T000000Z.db', 'oooo', '2024-01-01T00:00:00Z', {}, false);
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(path.join(folder, 'orphan_20240101T000000Z.db.manifest.json'), old, old);
    put('good_20240101T000000Z.db', 'gggg', '2024-01-01T00:00:00Z');
    fs.writeFileSync(path.join(folder, 'copied-by-hand.db'), 'hhhh');

    const removed = catalogue.cleanLeftovers('primary').map((f) => path.basename(f)).sort();
    assert.deepEqual(removed, [path.basename(deadJournal), path.basename(deadTemp), path.basename(staleOwn), 'orphan_20240101T000000Z.db.manifest.json'].sort());
    const left = fs.readdirSync(folder).sort();
    assert.deepEqual(left, [
      path.basename(ownTemp),
      'copied-by-hand.db',
      'fresh_20240101T000000Z.db.manifest.json',
      'good_20240101T000000Z.db',
      'good_20240101T000000Z.db.manifest.json',
    ].sort());
  });

  test('a missing backup_dir is an empty catalogue', () => {
    const empty = new Catalogue(path.join(dir, 'nowhere'));
    assert.deepEqual(empty.databases(), []);
    assert.deepEqual(empty.list('primary'), []);
    assert.equal(empty.newestGood('primary'), undefined);
  });
});
