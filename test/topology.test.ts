import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { InputError } from '../src/errors.js';

const config = parseConfig(
  `
disaster_recovery:
  enabled: true
  databases:
    secondary1: { type: secondary, priority: 1, url: "sqlite:///data/s1.db" }
    primary: { type: primary, priority: 0, url: "sqlite:///data/p.db" }
    spare: { type: secondary, priority: 2, url: "sqlite:///data/spare.db", enabled: false }
    备库: { type: secondary, priority: 3, url: "sqlite:///data/bk.db" }
`,
  '/srv/app/config.yaml',
  {},
  '/srv/app',
);

test('topology: one answer for a name, in priority order, wherever the name comes from', () => {
  const { topology } = config;
  assert.deepEqual(topology.names(), ['primary', 'secondary1', 'spare', '备库']);
  assert.deepEqual(topology.enabled().map((d) => d.name), ['primary', 'secondary1', '备库']);
  assert.equal(topology.get('备库')?.target.engine, 'sqlite');
  assert.equal(topology.get(undefined), undefined);
  assert.equal(topology.get('nope'), undefined);
  assert.equal(topology.configuredPrimary()?.name, 'primary');
  assert.equal(topology.require('spare').enabled, false, 'a disabled database is configured: the caller decides what that means');
  assert.throws(
    () => topology.require('nope'),
    (e: unknown) => e instanceof InputError && e.message === 'unknown database "nope" (configured: primary, secondary1, spare, 备库)',
  );
});
