/** Failure detection (plain function): when the HA loop fails over, holds (and says why), or does nothing. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { detectFailure, type Detection, type DetectionInput, type HoldReason } from '../../src/ha/detection.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');

const input = (extra: Partial<DetectionInput> = {}): DetectionInput => ({
  primary: 'primary',
  consecutiveFailures: 3,
  threshold: 3,
  autoFailoverEnabled: true,
  inProgress: false,
  now: NOW,
  lastAutoFailoverAt: undefined,
  cooldownSeconds: 300,
  lastAttemptAt: undefined,
  retryDelaySeconds: 5,
  ...extra,
});

interface Case {
  name: string;
  input: Partial<DetectionInput>;
  action: Detection['action'];
  because?: HoldReason;
  why?: RegExp;
}

const CASES: Case[] = [
  { name: 'healthy primary', input: { consecutiveFailures: 0 }, action: 'none' },
  { name: 'below the threshold', input: { consecutiveFailures: 2 }, action: 'none' },
  { name: 'below the threshold, even with auto-failover disabled (nothing to say yet)', input: { consecutiveFailures: 2, autoFailoverEnabled: false }, action: 'none' },
  { name: 'at the threshold', input: { consecutiveFailures: 3 }, action: 'failover' },
  { name: 'past the threshold', input: { consecutiveFailures: 7 }, action: 'failover' },
  { name: 'threshold 1: the first failure', input: { consecutiveFailures: 1, threshold: 1 }, action: 'failover' },
  { name: 'no primary known', input: { primary: undefined }, action: 'none' },
  { name: 'auto-failover disabled', input: { autoFailoverEnabled: false }, action: 'hold', because: 'disabled', why: /primary primary failed 3 probes in a row, but automatic failover is disabled/ },
  { name: 'a failover already in progress', input: { inProgress: true }, action: 'hold', because: 'in_progress', why: /already under way/ },
  {
    name: 'within the cooldown of the last automatic failover',
    input: { lastAutoFailoverAt: NOW - 120_000 },
    action: 'hold',
    because: 'cooldown',
    why: /last automatic failover was 120 s ago \(cooldown 300 s\)/,
  },
  { name: 'just past the cooldown', input: { lastAutoFailoverAt: NOW - 300_000 }, action: 'failover' },
  { name: 'cooldown 0: never held by it', input: { lastAutoFailoverAt: NOW - 1, cooldownSeconds: 0 }, action: 'failover' },
  { name: 'within retry_delay of the last attempt (no candidate, or failed)', input: { lastAttemptAt: NOW - 2_000 }, action: 'hold', because: 'retry_delay', why: /retrying after retry_delay/ },
  { name: 'retry_delay over: tries again', input: { lastAttemptAt: NOW - 5_000 }, action: 'failover' },
  { name: 'retry_delay 0: tries again at once', input: { lastAttemptAt: NOW, retryDelaySeconds: 0 }, action: 'failover' },
  { name: 'disabled wins over cooldown (the operator\'s word is the reason shown)', input: { autoFailoverEnabled: false, lastAutoFailoverAt: NOW - 1_000 }, action: 'hold', because: 'disabled', why: /disabled/ },
  { name: 'cooldown is reported before retry_delay', input: { lastAutoFailoverAt: NOW - 1_000, lastAttemptAt: NOW - 1_000 }, action: 'hold', because: 'cooldown', why: /cooldown/ },
];

describe('detectFailure', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const decision = detectFailure(input(c.input));
      assert.equal(decision.action, c.action, JSON.stringify(decision));
      if (c.why) assert.match(decision.action === 'hold' ? decision.why : '', c.why);
      if (c.because) assert.equal(decision.action === 'hold' ? decision.because : undefined, c.because);
    });
  }

  test('the kind of hold stays the same while the counts in its words change (the HA loop logs it once)', () => {
    const a = detectFailure(input({ autoFailoverEnabled: false, consecutiveFailures: 3 }));
    const b = detectFailure(input({ autoFailoverEnabled: false, consecutiveFailures: 4 }));
    assert.ok(a.action === 'hold' && b.action === 'hold');
    assert.notEqual(a.why, b.why);
    assert.equal(a.because, b.because);
  });
});
