import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backupFileName, databaseDir, isInside, temporaryOwner, utcStamp, validateBackupName } from '../../src/backup/naming.js';
import { temporaryNameFor } from '../../src/engines/durable-file.js';
import { InputError } from '../../src/errors.js';

describe('backup names', () => {
  test('names from --name: letters and digits of any script, "_", "-", "." pass', () => {
    for (const name of ['before_upgrade', 'manual_backup_20231201', 'v1.2-rc', 'a', 'é', '升级前备份', 'नमस्ते', 'x'.repeat(150)]) assert.equal(validateBackupName(name), name);
  });

  test('path separators, "..", hidden names, controls, empty and overlong names are refused', () => {
    const refused = ['a/b', '../etc', 'a\\b', '..', 'x..y', '.hidden', '-rf', '', ' ', 'a b', 'a\nb', 'a\u001b[31m', 'a\u202eb', 'a{b}', 'a"b', 'x'.repeat(151), '备'.repeat(51), '/abs'];
    for (const name of refused) {
      assert.throws(() => validateBackupName(name), InputError, name);
    }
  });

  test('file names: <name>_<UTC stamp>[-N].<ext>[.gz]', () => {
    const at = new Date('2023-12-01T14:30:05.123Z');
    assert.equal(utcStamp(at), '20231201T143005Z');
    assert.equal(backupFileName('before_upgrade', at, 'sqlite-database', true), 'before_upgrade_20231201T143005Z.db.gz');
    assert.equal(backupFileName('nightly', at, 'postgresql-custom', false), 'nightly_20231201T143005Z.dump');
    assert.equal(backupFileName('nightly', at, 'postgresql-custom', true, 2), 'nightly_20231201T143005Z-2.dump.gz');
  });

  test('database folders stay inside backup_dir', () => {
    assert.equal(databaseDir('/b', 'primary'), '/b/primary');
    assert.throws(() => databaseDir('/b', '..'), InputError);
    assert.throws(() => databaseDir('/b', '.'), InputError);
  });

  test('temporary files name their maker; SQLite journals beside them too', () => {
    const temporary = temporaryNameFor('/b/primary/x_20231201T143005Z.db.gz');
    assert.equal(temporaryOwner(temporary)?.pid, process.pid);
    assert.equal(temporaryOwner(`${temporary}-journal`)?.pid, process.pid);
    assert.equal(temporaryOwner('/b/primary/.x.db.gz.tmp-12-1700000000000')?.createdMs, 1700000000000);
    assert.equal(temporaryOwner('/b/primary/x_20231201T143005Z.db.gz'), undefined);
    assert.equal(temporaryOwner('/b/primary/x.db.gz.manifest.json'), undefined);
  });

  test('isInside', () => {
    assert.equal(isInside('/b', '/b/primary/x.gz'), true);
    assert.equal(isInside('/b', '/b'), true);
    assert.equal(isInside('/b', '/b/../etc/passwd'), false);
    assert.equal(isInside('/b', '/bx/y'), false);
    assert.equal(isInside('/b', '/'), false);
  });
});
