import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planArchiveRetention, type RetainedBase, type RetainedSegment } from '../../src/backup/archive-retention.js';

const DAY = 86_400_000;
const now = new Date('2026-11-30T12:00:00Z');
const daysAgo = (d: number) => new Date(now.getTime() - d * DAY);
const base = (id: string, age: number, startSegno: number): RetainedBase => ({ id, consistentAt: daysAgo(age), startSegno: BigInt(startSegno) });
const segments = (from: number, to: number): RetainedSegment[] => Array.from({ length: to - from + 1 }, (_, i) => ({ id: `s${from + i}`, segno: BigInt(from + i) }));
const ids = (xs: Array<{ id: string }>) => xs.map((x) => x.id);

describe('archive retention', () => {
  test('keeps the newest base backup at or before the cutoff, every newer one, and every segment from its start', () => {
    const plan = planArchiveRetention([base('b40', 40, 10), base('b31', 31, 20), base('b20', 20, 30), base('b1', 1, 40)], segments(10, 45), 30, now);
    assert.deepEqual(ids(plan.keepBackups), ['b31', 'b20', 'b1']);
    assert.deepEqual(ids(plan.removeBackups), ['b40']);
    assert.equal(plan.keepSegments[0]!.segno, 20n);
    assert.deepEqual(ids(plan.removeSegments), ids(segments(10, 19)));
  });

  test('a cutoff exactly at a backup keeps it as the anchor', () => {
    const plan = planArchiveRetention([base('old', 35, 1), base('edge', 30, 5)], segments(1, 9), 30, now);
    assert.deepEqual(ids(plan.keepBackups), ['edge']);
    assert.equal(plan.removeSegments.length, 4);
  });

  test('no backup as old as the cutoff: nothing is removed (the oldest is the only way back)', () => {
    const plan = planArchiveRetention([base('b10', 10, 50), base('b2', 2, 60)], segments(40, 65), 30, now);
    assert.deepEqual(ids(plan.keepBackups), ['b10', 'b2']);
    assert.deepEqual(ids(plan.removeBackups), []);
    // Segments before the oldest backup restore nothing: they go.
    assert.equal(plan.keepSegments[0]!.segno, 50n);
  });

  test('no base backup at all: every segment stays', () => {
    const plan = planArchiveRetention([], segments(1, 5), 30, now);
    assert.equal(plan.keepSegments.length, 5);
    assert.equal(plan.removeSegments.length, 0);
  });

  test('never removes a segment a kept backup needs, even one that started before the anchor', () => {
    // b31 is the anchor (start 20); b29 is kept and started at segment 15 (a backup that ran long).
    const plan = planArchiveRetention([base('b40', 40, 5), base('b31', 31, 20), base('b29', 29, 15)], segments(5, 30), 30, now);
    assert.deepEqual(ids(plan.keepBackups), ['b31', 'b29']);
    for (const b of plan.keepBackups) assert.ok(plan.keepSegments.some((s) => s.segno === b.startSegno), `segment ${b.startSegno} of ${b.id} kept`);
    assert.equal(plan.keepSegments[0]!.segno, 15n);
  });
});
