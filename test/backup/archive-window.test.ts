import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { archiveView, pickRestore, type ArchivedSegment, type BaseBackupRef } from '../../src/backup/archive-window.js';

const t = (s: number) => new Date(Date.UTC(2026, 10, 30, 12, 0, s));
const seg = (segno: number, first?: number, last?: number): ArchivedSegment => ({
  name: `seg${segno}`,
  segno: BigInt(segno),
  timeline: 1,
  firstCommit: first === undefined ? undefined : t(first),
  lastCommit: last === undefined ? undefined : t(last),
});
const base = (key: string, at: number, start: number, end = start): BaseBackupRef => ({ key, consistentAt: t(at), startSegno: BigInt(start), endSegno: BigInt(end), selfContained: true });

describe('archive window', () => {
  test('one run: from the earliest usable base backup to the last archived commit', () => {
    const view = archiveView([seg(2, 1, 5), seg(3, 6, 9), seg(4), seg(5, 12, 14)], [base('b1', 5, 2), base('b2', 10, 3)]);
    assert.deepEqual(view.ranges, [{ from: t(5), to: t(14) }]);
    assert.deepEqual(view.gaps, []);
  });

  test('a hole: a gap from the last commit before it to the first after it, named with the recorded reason', () => {
    const segments = [seg(2, 1, 5), seg(3, 6, 9), seg(7, 30, 33), seg(8, 34, 40)];
    const view = archiveView(segments, [base('b1', 2, 2), base('b2', 31, 7)], [{ at: t(20), reason: 'slot dropped' }]);
    assert.deepEqual(view.ranges, [{ from: t(2), to: t(9) }, { from: t(31), to: t(40) }]);
    assert.equal(view.gaps.length, 1);
    assert.deepEqual([view.gaps[0]!.from, view.gaps[0]!.to], [t(9), t(30)]);
    assert.match(view.gaps[0]!.reason, /3 WAL segment\(s\) missing after seg3: slot dropped/);
  });

  test('after a hole with no base backup since, nothing after it is restorable', () => {
    const view = archiveView([seg(2, 1, 5), seg(7, 30, 33)], [base('b1', 2, 2)]);
    assert.deepEqual(view.ranges, [{ from: t(2), to: t(5) }]);
    assert.equal(view.gaps.length, 1);
  });

  test('pick: the nearest earlier base backup and the segments up to the first commit after the time', () => {
    const segments = [seg(2, 1, 5), seg(3, 6, 9), seg(4, 10, 12), seg(5, 13, 20)];
    const pick = pickRestore(segments, [base('b1', 2, 2), base('b2', 7, 3)], t(10));
    assert.ok(typeof pick !== 'string');
    assert.equal(pick.base.key, 'b2');
    assert.deepEqual(pick.segments.map((s) => s.name), ['seg3', 'seg4']);
    assert.equal(pick.stopAtTime, true);
  });

  test('pick: at or after the last archived commit, replay to the end (PostgreSQL would call the time unreached)', () => {
    const pick = pickRestore([seg(2, 1, 5), seg(3, 6, 9)], [base('b1', 2, 2)], t(9));
    assert.ok(typeof pick !== 'string');
    assert.equal(pick.stopAtTime, false);
    assert.deepEqual(pick.segments.map((s) => s.name), ['seg2', 'seg3']);
  });

  test('pick: no base backup early enough, or a hole between it and the time', () => {
    assert.match(pickRestore([seg(2, 1, 5)], [base('b1', 3, 2)], t(1)) as string, /no base backup/);
    assert.match(pickRestore([seg(2, 1, 5), seg(4, 10, 12)], [base('b1', 2, 2)], t(11)) as string, /gap/);
  });
});
