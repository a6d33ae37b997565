import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProbeResult } from '../../src/engines/engine.js';
import { applyProbe, hasFailed, initialHealth } from '../../src/monitor/health.js';

const up = (at: number, seconds = 0.002): ProbeResult => ({ up: true, checkedAt: at, responseTimeSeconds: seconds });
const down = (at: number, error = 'connection refused'): ProbeResult => ({ up: false, checkedAt: at, responseTimeSeconds: 0.001, error });

test('failures in a row count up, a success resets them, errors accumulate', () => {
  const steps: Array<[ProbeResult, string, number, number]> = [
    [up(1), 'up', 0, 0],
    [down(2), 'down', 1, 1],
    [down(3), 'down', 2, 2],
    [up(4), 'up', 0, 2],
    [down(5, 'timeout'), 'down', 1, 3],
  ];
  let h = initialHealth('primary');
  assert.equal(h.status, 'unknown');
  for (const [result, status, consecutive, errors] of steps) {
    h = applyProbe(h, result);
    assert.deepEqual([h.status, h.consecutiveFailures, h.errorCount], [status, consecutive, errors], `after probe at ${result.checkedAt}`);
  }
  assert.equal(h.probes, 5);
  assert.equal(h.lastUpAt, 4);
  assert.equal(h.lastDownAt, 5);
  assert.equal(h.lastError, 'timeout');
});

test('the last error is kept after recovery, for status', () => {
  const h = applyProbe(applyProbe(initialHealth('p'), down(1, 'file not found')), up(2));
  assert.equal(h.status, 'up');
  assert.equal(h.lastError, 'file not found');
});

test('dead only at the threshold; a slow answer is not a failure', () => {
  let h = initialHealth('p');
  h = applyProbe(h, up(1, 12.5));
  assert.equal(hasFailed(h, 1), false);
  h = applyProbe(applyProbe(h, down(2)), down(3));
  assert.equal(hasFailed(h, 3), false);
  h = applyProbe(h, down(4));
  assert.equal(hasFailed(h, 3), true);
});
