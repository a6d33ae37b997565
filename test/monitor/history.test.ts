import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProbeHistory } from '../../src/monitor/history.js';

const HOUR = 3_600_000;

test('keeps probes for the retention window only, in order, growing past its first capacity', () => {
  const history = new ProbeHistory(2 * HOUR, 4);
  const t0 = 1_000_000_000_000;
  for (let i = 0; i < 300; i++) history.add(t0 + i * 60_000, i % 10 !== 0, i / 1000);
  const now = t0 + 299 * 60_000;
  const samples = history.samples(now);
  assert.equal(samples.length, 121, 'two hours of one-minute probes, both ends included');
  assert.equal(samples[0]!.at, now - 2 * HOUR);
  assert.ok(samples.every((s, i) => i === 0 || s.at > samples[i - 1]!.at));
});

test('summary: availability, average and max response time', () => {
  const history = new ProbeHistory(HOUR);
  history.add(1000, true, 0.01);
  history.add(2000, false, 0.03);
  history.add(3000, true, 0.02);
  history.add(4000, true, 0.02);
  const s = history.summary(4000);
  assert.equal(s.samples, 4);
  assert.equal(s.availability, 0.75);
  assert.ok(Math.abs(s.averageResponseSeconds! - 0.02) < 1e-6);
  assert.ok(Math.abs(s.maxResponseSeconds! - 0.03) < 1e-6);
  assert.equal(s.since, 1000);
});

test('an empty or fully expired history summarises to nothing', () => {
  const history = new ProbeHistory(HOUR);
  assert.equal(history.summary().samples, 0);
  history.add(0, true, 0.01);
  assert.equal(history.summary(2 * HOUR).samples, 0);
  assert.equal(history.summary(2 * HOUR).availability, undefined);
});
