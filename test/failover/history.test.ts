import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { failoverRecordJson, parseHistoryLimit } from '../../src/failover/history.js';

test('history limits: digits from 1 to 10000, anything else an InputError naming the option', () => {
  for (const [raw, limit] of [['1', 1], ['20', 20], ['10000', 10_000], ['007', 7]] as const) assert.equal(parseHistoryLimit(raw, '--limit'), limit);
  for (const raw of ['0', '10001', '99999999999999999999', '1e3', ' 5', '0x10', '-1', '1.5', '', 'abc', ['1', '2']]) {
    assert.throws(() => parseHistoryLimit(raw, 'limit'), (e: Error) => e instanceof InputError && /^limit: expected a whole number from 1 to 10000, got "/.test(e.message), String(raw));
  }
});

test('a history entry as JSON: snake_case keys, nothing left out', () => {
  const json = failoverRecordJson({
    id: 3,
    epoch: 2,
    startedAt: '2023-12-01T14:30:00.000Z',
    finishedAt: '2023-12-01T14:30:01.000Z',
    from: 'primary',
    to: 'secondary1',
    trigger: 'auto',
    reason: 'down',
    result: 'success',
    error: null,
    dataSync: { method: 'periodic-copy', complete: false, detail: 'last copy 3 s old', lagSeconds: 3 },
    phases: { detect: 10, switch: 5 },
  });
  assert.deepEqual(json, {
    id: 3,
    epoch: 2,
    started_at: '2023-12-01T14:30:00.000Z',
    finished_at: '2023-12-01T14:30:01.000Z',
    from: 'primary',
    to: 'secondary1',
    trigger: 'auto',
    reason: 'down',
    result: 'success',
    error: null,
    data_sync: { method: 'periodic-copy', complete: false, detail: 'last copy 3 s old', lag_seconds: 3 },
    phases: { detect: 10, switch: 5 },
  });
});
