import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planRetention, type RetainedBackup } from '../../src/backup/retention.js';

const NOW = new Date('2024-06-30T12:00:00Z');
const DAY = 86_400_000;

/** A backup `days` days before NOW, named by its age. */
const aged = (days: number, good = true): RetainedBackup => ({ id: `age-${days}`, createdAt: new Date(NOW.getTime() - days * DAY), good });
const ids = (list: RetainedBackup[]) => list.map((b) => b.id);

describe('planRetention', () => {
  test('15 backups over 40 days, max_backups 10, retention_days 30: the 10 newest, less those older than 30 days', () => {
    // A week of dailies, then sparser ones: the count limit cuts at age 31, the age limit at 30.
    const ages = [0, 1, 2, 3, 4, 5, 6, 10, 20, 31, 32, 35, 37, 39, 40];
    const backups = ages.map((d) => aged(d)).reverse();
    const plan = planRetention(backups, { maxBackups: 10, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-0', 'age-1', 'age-2', 'age-3', 'age-4', 'age-5', 'age-6', 'age-10', 'age-20']);
    assert.deepEqual(ids(plan.remove), ['age-31', 'age-32', 'age-35', 'age-37', 'age-39', 'age-40']);
  });

  test('15 backups over 40 days, evenly spaced: the count limit binds first', () => {
    const backups = Array.from({ length: 15 }, (_, i) => aged((i * 40) / 14));
    const plan = planRetention(backups, { maxBackups: 10, retentionDays: 30 }, NOW);
    assert.equal(plan.keep.length, 10);
    assert.deepEqual(ids(plan.keep), ids(backups.slice(0, 10)));
    assert.deepEqual(ids(plan.remove), ids(backups.slice(10)));
  });

  test('exactly retention_days old stays; a millisecond older goes', () => {
    const edge = { id: 'edge', createdAt: new Date(NOW.getTime() - 30 * DAY), good: true };
    const past = { id: 'past', createdAt: new Date(NOW.getTime() - 30 * DAY - 1), good: true };
    const plan = planRetention([aged(0), edge, past], { maxBackups: 10, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-0', 'edge']);
    assert.deepEqual(ids(plan.remove), ['past']);
  });

  test('every backup older than retention_days: the newest good one stays', () => {
    const plan = planRetention([aged(45), aged(50), aged(60)], { maxBackups: 10, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-45']);
    assert.deepEqual(ids(plan.remove), ['age-50', 'age-60']);
  });

  test('the newest backups are bad: the newest good one stays even outside both limits', () => {
    const backups = [aged(0, false), aged(1, false), aged(2, false), aged(40)];
    const plan = planRetention(backups, { maxBackups: 2, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-0', 'age-1', 'age-40']);
    assert.deepEqual(ids(plan.remove), ['age-2']);
  });

  test('bad backups count toward max_backups like any file', () => {
    const plan = planRetention([aged(0), aged(1, false), aged(2), aged(3)], { maxBackups: 2, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-0', 'age-1']);
    assert.deepEqual(ids(plan.remove), ['age-2', 'age-3']);
  });

  test('no good backup at all: the limits alone decide', () => {
    const plan = planRetention([aged(0, false), aged(40, false)], { maxBackups: 10, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-0']);
    assert.deepEqual(ids(plan.remove), ['age-40']);
  });

  test('max_backups 1 keeps only the newest; input order does not matter', () => {
    const plan = planRetention([aged(3), aged(1), aged(2)], { maxBackups: 1, retentionDays: 30 }, NOW);
    assert.deepEqual(ids(plan.keep), ['age-1']);
    assert.deepEqual(ids(plan.remove), ['age-2', 'age-3']);
  });

  test('fractional retention_days and a backup from the future (clock skew) stays', () => {
    const future = { id: 'future', createdAt: new Date(NOW.getTime() + DAY), good: true };
    const plan = planRetention([future, aged(0.4), aged(0.6)], { maxBackups: 10, retentionDays: 0.5 }, NOW);
    assert.deepEqual(ids(plan.keep), ['future', 'age-0.4']);
    assert.deepEqual(ids(plan.remove), ['age-0.6']);
  });

  test('nothing to plan', () => {
    assert.deepEqual(planRetention([], { maxBackups: 10, retentionDays: 30 }, NOW), { keep: [], remove: [] });
  });
});
