import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { maskUrlIn, maskWebhookUrl, safetyNetSecrets, scrubSecrets, webhookTarget } from '../../src/config/secrets.js';
import { ConfigError } from '../../src/errors.js';
import { maskConninfoPasswords } from '../../src/telemetry/instrumentations.js';

const config = (server: string, extra = '') => `
server: ${server}
disaster_recovery:
  enabled: true
  databases:
    primary: { type: primary, priority: 0, url: "postgresql://user:e@127.0.0.1:5432/nodb_here" }
    secondary1: { type: secondary, priority: 1, url: "postgresql://user:password@127.0.0.1:5432/other" }
${extra}`;

const problemsOf = (text: string): string[] => {
  try {
    parseConfig(text, 'x.yaml', {});
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('accepted');
};

describe('server.auth_token', () => {
  test('shorter than 16 characters is refused at load, saying how long it must be', () => {
    assert.deepEqual(problemsOf(config('{ auth_token: "t" }')), [
      'server.auth_token: is 1 character long; use at least 16 (e.g. the output of `openssl rand -hex 24`), or leave it empty to refuse every /api/* and POST route',
    ]);
    assert.match(problemsOf(config('{ auth_token: "0123456789abcde" }'))[0]!, /is 15 characters long; use at least 16/);
  });

  test('16 characters, or none at all, is accepted', () => {
    assert.equal(parseConfig(config('{ auth_token: "0123456789abcdef" }'), 'x.yaml', {}).server.auth_token, '0123456789abcdef');
    assert.equal(parseConfig(config('{ auth_token: "" }'), 'x.yaml', {}).server.auth_token, undefined);
  });
});

describe('the safety net knows only secrets long enough that a match is the secret', () => {
  test('passwords "e" and "password" are not in it: no message is garbled', () => {
    const loaded = parseConfig(config('{ auth_token: "tok-0123456789abcdef" }'), 'x.yaml', {});
    assert.deepEqual(loaded.secrets, ['tok-0123456789abcdef']);
    const messages = ['database "nodb_here" does not exist', 'password authentication failed for user "user"'];
    for (const m of messages) assert.equal(scrubSecrets(m, loaded.secrets), m);
  });

  test('a long secret is replaced as written, URL-encoded and JSON-escaped', () => {
    const secret = 'pa"ss/w0rd:long';
    const net = safetyNetSecrets([secret, 'short', undefined]);
    assert.deepEqual([...net].sort(), [secret, encodeURIComponent(secret), 'pa\\"ss/w0rd:long'].sort());
    assert.equal(scrubSecrets(`a ${secret} b ${encodeURIComponent(secret)} c ${JSON.stringify(secret)}`, net), 'a *** b *** c "***"');
  });

  test('webhook passwords and query tokens join the net when long enough', () => {
    const loaded = parseConfig(
      config('{}', '  notifications: { webhooks: ["http://hookuser:hooks3cret-long@127.0.0.1:9/hook?token=hooktoken-0123&x=1"] }'),
      'x.yaml',
      {},
    );
    assert.ok(loaded.secrets.includes('hooks3cret-long') && loaded.secrets.includes('hooktoken-0123'), String(loaded.secrets));
  });
});

describe('webhook URLs', () => {
  test('credentials become a Basic authorization; the URL is shown with password and query values masked', () => {
    const target = webhookTarget('http://hookuser:hooks3cret@127.0.0.1:9/hook?token=abc&x=1');
    assert.equal(target.href, 'http://127.0.0.1:9/hook?token=abc&x=1');
    assert.equal(target.authorization, `Basic ${Buffer.from('hookuser:hooks3cret').toString('base64')}`);
    assert.equal(target.shown, 'http://hookuser:***@127.0.0.1:9/hook?token=***&x=***');
    assert.deepEqual(webhookTarget('https://example.com/hook').authorization, undefined);
    assert.equal(maskWebhookUrl('https://example.com/hook'), 'https://example.com/hook');
  });

  test('the URL inside an error message is replaced by its masked form', () => {
    const url = 'http://hookuser:hooks3cret@127.0.0.1:9/hook?token=abc';
    assert.equal(
      maskUrlIn(`Request cannot be constructed from a URL that includes credentials: ${url}`, url),
      'Request cannot be constructed from a URL that includes credentials: http://hookuser:***@127.0.0.1:9/hook?token=***',
    );
  });
});

test('traces: a primary_conninfo statement shows no password, however it is quoted', () => {
  const statement = "ALTER SYSTEM SET primary_conninfo = 'host=''127.0.0.1'' port=5432 user=''u'' application_name=''s'' password=''se\\''cret x'''";
  assert.equal(maskConninfoPasswords(statement), "ALTER SYSTEM SET primary_conninfo = 'host=''127.0.0.1'' port=5432 user=''u'' application_name=''s'' password=***");
  assert.equal(maskConninfoPasswords('SELECT 1'), 'SELECT 1');
});
