import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BackupSchedule, nextBackupAt, RETRY_AFTER_MS, retryAt } from '../../src/backup/schedule.js';
import { silentLogger } from '../../src/log.js';

const NOW = Date.parse('2024-06-30T12:00:00Z');

describe('nextBackupAt', () => {
  test('no backup yet: now', () => {
    assert.equal(nextBackupAt(undefined, 3600, NOW), NOW);
  });
  test('one interval after the newest good backup', () => {
    assert.equal(nextBackupAt(NOW - 600_000, 3600, NOW), NOW + 3_000_000);
  });
  test('overdue (the sidecar was down): now, not a full interval later', () => {
    assert.equal(nextBackupAt(NOW - 7_200_000, 3600, NOW), NOW);
  });
  test('a backup stamped in the future (clock skew) does not push the next one beyond an interval', () => {
    assert.equal(nextBackupAt(NOW + 86_400_000, 3600, NOW), NOW + 3_600_000);
  });
  test('after a failure: retry within five minutes, sooner when the interval is shorter', () => {
    assert.equal(retryAt(NOW, 3600), NOW + RETRY_AFTER_MS);
    assert.equal(retryAt(NOW, 30), NOW + 30_000);
  });
});

describe('BackupSchedule (node-schedule)', () => {
  test('runs when due, plans the next from the last success, retries after a failure, stops', async () => {
    const runs: number[] = [];
    let last: number | undefined;
    const outcomes = [false, true, true];
    const schedule = new BackupSchedule({
      intervalSeconds: 0.3,
      lastSuccessMs: () => last,
      run: async () => {
        runs.push(Date.now());
        const ok = outcomes.shift() ?? true;
        if (ok) last = Date.now();
        return ok;
      },
      log: silentLogger(),
    });
    schedule.start();
    const deadline = Date.now() + 15_000;
    while (runs.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    schedule.stop();
    const count = runs.length;
    // failure, retry 0.3 s later (interval shorter than the retry delay), then every 0.3 s after a success
    assert.ok(count >= 3, `${count} runs in 15 s`);
    // Never sooner than planned: node-schedule's own timer (a lower bound load cannot break).
    for (let i = 1; i < runs.length; i++) assert.ok(runs[i]! - runs[i - 1]! >= 280, `gap ${runs[i]! - runs[i - 1]!} ms`);
    // Three intervals and more: a run planned before stop() would have come by now.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(runs.length, count, 'no run after stop()');
  });

  test('with no backup yet, the first run starts at once, not an interval later', async () => {
    let runs = 0;
    const schedule = new BackupSchedule({ intervalSeconds: 3600, lastSuccessMs: () => undefined, run: async () => (runs++, true), log: silentLogger() });
    schedule.start();
    try {
      const deadline = Date.now() + 15_000;
      while (runs === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(runs, 1, 'one run within 15 s with backup_interval 3600 s and no backup');
    } finally {
      schedule.stop();
    }
  });
});
