/** The restore windows status answers with: computed in the background when due, never per request, one computation at a time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RestoreWindowCache, windowsDue } from '../../src/backup/restore-window-cache.js';
import type { RestoreWindow } from '../../src/backup/point-in-time.js';
import { memoryLogger } from '../support/failover.js';

const window = (to: string): RestoreWindow => ({
  database: 'primary',
  engine: 'postgresql',
  ranges: [{ from: new Date('2026-05-01T00:00:00Z'), to: new Date(to) }],
  gaps: [],
});

test('windowsDue: first read, then only after maxAge since the last attempt, never while one is under way', () => {
  assert.equal(windowsDue(undefined, 0, 30_000, false), true);
  assert.equal(windowsDue(undefined, 0, 30_000, true), false);
  assert.equal(windowsDue(1_000, 30_999, 30_000, false), false);
  assert.equal(windowsDue(1_000, 31_000, 30_000, false), true);
  assert.equal(windowsDue(1_000, 99_000, 30_000, true), false);
});

test('reads answer from the last computation; many reads start one computation; a due read refreshes in the background', async () => {
  let clock = Date.parse('2026-05-01T12:00:00Z');
  let calls = 0;
  let release: () => void = () => undefined;
  const compute = () => {
    calls += 1;
    const n = calls;
    return new Promise<RestoreWindow[]>((resolve) => (release = () => resolve([window(`2026-05-01T11:0${n}:00Z`)])));
  };
  const cache = new RestoreWindowCache(compute, memoryLogger().log, 30_000, () => new Date(clock));
  assert.deepEqual(cache.current(), [], 'nothing before the first computation');
  for (let i = 0; i < 50; i++) cache.current();
  assert.equal(calls, 1, 'fifty reads, one computation');
  release();
  await cache.settle();
  const first = cache.current();
  assert.equal(first[0]!.ranges[0]!.to, '2026-05-01T11:01:00.000Z');
  assert.equal(first[0]!.computed_at, '2026-05-01T12:00:00.000Z');
  clock += 29_000;
  cache.current();
  assert.equal(calls, 1, 'not due yet');
  clock += 1_000;
  assert.equal(cache.current()[0]!.ranges[0]!.to, '2026-05-01T11:01:00.000Z', 'the old windows while the new ones are computed');
  assert.equal(calls, 2);
  release();
  await cache.settle();
  assert.equal(cache.current()[0]!.ranges[0]!.to, '2026-05-01T11:02:00.000Z');
});

test('a failed computation keeps the last windows, is logged, and is retried only when due again', async () => {
  let clock = 0;
  let fail = false;
  let calls = 0;
  const { log, text } = memoryLogger();
  const cache = new RestoreWindowCache(async () => {
    calls += 1;
    if (fail) throw new Error('listing s3://b/p failed: ECONNREFUSED');
    return [window('2026-05-01T11:00:00Z')];
  }, log, 30_000, () => new Date(clock));
  await cache.refresh();
  fail = true;
  clock = 30_000;
  assert.equal(cache.current().length, 1);
  await cache.settle();
  assert.equal(cache.current()[0]!.ranges[0]!.to, '2026-05-01T11:00:00.000Z');
  assert.equal(calls, 2);
  assert.match(text(), /restore windows could not be computed .*ECONNREFUSED/);
  clock = 59_999;
  cache.current();
  assert.equal(calls, 2);
});
