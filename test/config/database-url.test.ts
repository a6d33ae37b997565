import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DatabaseUrlError, maskDatabaseUrl, parseDatabaseUrl } from '../../src/config/database-url.js';

describe('database URLs read as SQLAlchemy reads them', () => {
  test('sqlite:/// is relative to the working directory, sqlite://// is absolute', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite:///data/images_primary.db', '/srv/app'), { engine: 'sqlite', file: '/srv/app/data/images_primary.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:////var/lib/x.db', '/srv/app'), { engine: 'sqlite', file: '/var/lib/x.db' });
  });

  test('an in-memory or slash-less SQLite URL is refused with the fix', () => {
    assert.throws(() => parseDatabaseUrl('sqlite:///:memory:'), /in-memory/);
    assert.throws(() => parseDatabaseUrl('sqlite://data/x.db'), /three slashes/);
  });

  test('postgresql URL with password, port, driver suffix and escapes', () => {
    const t = parseDatabaseUrl('postgresql+psycopg2://crawler:p%40ss%3Aword@db.local:6543/image_crawler?sslmode=disable');
    assert.equal(t.engine, 'postgresql');
    if (t.engine !== 'postgresql') return;
    assert.equal(t.host, 'db.local');
    assert.equal(t.port, 6543);
    assert.equal(t.database, 'image_crawler');
    assert.equal(t.user, 'crawler');
    assert.equal(t.password, 'p@ss:word');
    assert.match(t.connectionString, /^postgresql:\/\/crawler:p%40ss%3Aword@db\.local:6543\/image_crawler\?sslmode=disable$/);
  });

  test('a "%" that starts no percent escape is a DatabaseUrlError naming the part, never quoting a password', () => {
    const cases: Array<[string, RegExp]> = [
      ['postgresql://app:50%off@db/shop', /^the password holds a "%" that does not start a percent escape \(%XX\); write a literal "%" as %25$/],
      ['postgresql://us%er@db/shop', /^the user name "us%er" holds a "%"/],
      ['postgresql://app@db/100%', /^the database name "100%" holds a "%"/],
      ['sqlite:///data/100%.db', /^the file path "data\/100%.db" holds a "%"/],
    ];
    for (const [url, message] of cases) {
      assert.throws(() => parseDatabaseUrl(url), (e: Error) => e instanceof DatabaseUrlError && message.test(e.message) && !e.message.includes('50%off'), url);
    }
  });

  test('postgresql defaults: port 5432, user postgres', () => {
    const t = parseDatabaseUrl('postgres://localhost/app');
    assert.equal(t.engine === 'postgresql' && t.port, 5432);
    assert.equal(t.engine === 'postgresql' && t.user, 'postgres');
  });

  test('missing host, database or a foreign scheme are refused', () => {
    assert.throws(() => parseDatabaseUrl('postgresql:///app'), /needs a host/);
    assert.throws(() => parseDatabaseUrl('postgresql://localhost:5432/'), /needs a database name/);
    assert.throws(() => parseDatabaseUrl('mysql://localhost/app'), /unsupported database scheme "mysql"/);
    assert.throws(() => parseDatabaseUrl('just-a-path.db'), /expected a URL/);
  });

  test('masking hides the password and nothing else', () => {
    assert.equal(maskDatabaseUrl('postgresql://user:password@localhost:5432/db'), 'postgresql://user:***@localhost:5432/db');
    assert.equal(maskDatabaseUrl('postgresql://user:p@ss@host/db'), 'postgresql://user:***@host/db');
    assert.equal(maskDatabaseUrl('postgresql://user@localhost/db'), 'postgresql://user@localhost/db');
    assert.equal(maskDatabaseUrl('sqlite:///data/x.db'), 'sqlite:///data/x.db');
    // libpq's query parameters carry passwords too.
    assert.equal(maskDatabaseUrl('postgresql://user@host/db?sslmode=disable&password=s3c&x=1'), 'postgresql://user@host/db?sslmode=disable&password=***&x=1');
    assert.equal(maskDatabaseUrl('postgresql://u:p@host/db?sslpassword=k'), 'postgresql://u:***@host/db?sslpassword=***');
  });
});
