import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const yaml = (offsite: string) => `
disaster_recovery:
  databases:
    primary: { type: primary, priority: 0, url: "sqlite:///data/p.db" }
  backup:
    offsite:
${offsite}
`;

test('backup.offsite: defaults, keys from ${VAR}, and both keys in the secrets safety net', () => {
  const config = parseConfig(
    yaml(`      - type: s3
        endpoint: https://s3.example.com
        bucket: crawler-backups
        access_key_id: \${S3_KEY}
        secret_access_key: \${S3_SECRET}`),
    '/etc/dr.yaml',
    { S3_KEY: 'AKIAEXAMPLEKEY000001', S3_SECRET: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    '/srv',
  );
  assert.deepEqual(config.backup.offsite, [
    {
      type: 's3',
      endpoint: 'https://s3.example.com',
      bucket: 'crawler-backups',
      prefix: '',
      region: 'us-east-1',
      access_key_id: 'AKIAEXAMPLEKEY000001',
      secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      force_path_style: false,
    },
  ]);
  assert.ok(config.secrets.includes('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'));
  assert.ok(config.secrets.includes('AKIAEXAMPLEKEY000001'));
  assert.deepEqual(parseConfig(yaml('      []'), '/etc/dr.yaml', {}, '/srv').backup.offsite, []);
});

test('backup.offsite: every problem by its path', () => {
  assert.throws(
    () =>
      parseConfig(
        yaml(`      - { type: ftp, bucket: b, access_key_id: k, secret_access_key: s }
      - { type: s3, access_key_id: k, secret_access_key: s, force_path_style: maybe, colour: blue }`),
        '/etc/dr.yaml',
        {},
        '/srv',
      ),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.sort(), [
        'disaster_recovery.backup.offsite.0.bucket: expected a bucket name (at least 3 characters)',
        'disaster_recovery.backup.offsite.0.type: expected one of "s3"',
        'disaster_recovery.backup.offsite.1.bucket: is required',
        'disaster_recovery.backup.offsite.1.force_path_style: expected true or false',
        'disaster_recovery.backup.offsite.1: unknown key "colour"',
      ]);
      return true;
    },
  );
});
