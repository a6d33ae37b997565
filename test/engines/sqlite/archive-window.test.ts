import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planArchiveRetention } from '../../../src/engines/sqlite/archive-retention.js';
import { archiveView, pickRestore, type ArchivedGeneration } from '../../../src/engines/sqlite/archive-window.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-01T00:00:00Z');

/** A generation started at `start` (ms after T0) with segments at the given times (sequence 1, 2, … unless given). */
function gen(name: string, start: number, segments: Array<number | [sequence: number, at: number]>, continues: string | null = null, reason = 'start'): ArchivedGeneration {
  return {
    name,
    startedMs: T0 + start,
    record: { reason, continues, snapshotKey: `db/archive/${name}/snapshot.db.gz` },
    segments: segments.map((s, i) => {
      const [sequence, at] = Array.isArray(s) ? s : [i + 1, s];
      return { key: `db/archive/${name}/${sequence}`, sequence, committedMs: T0 + at, size: 1 };
    }),
  };
}
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const shown = (v: ReturnType<typeof archiveView>) => ({
  ranges: v.ranges.map((r) => [r.from.toISOString(), r.to.toISOString()]),
  gaps: v.gaps.map((g) => [g.from.toISOString(), g.to.toISOString(), g.reason]),
});

test('the window: a generation restores from its snapshot to its last segment; a continued one joins; a lost continuity and a missing segment are gaps', () => {
  const cases: Array<[string, ArchivedGeneration[], ReturnType<typeof shown>]> = [
    ['nothing archived', [], { ranges: [], gaps: [] }],
    ['a snapshot alone', [gen('a', 0, [])], { ranges: [[iso(0), iso(0)]], gaps: [] }],
    ['segments', [gen('a', 0, [10, 20])], { ranges: [[iso(0), iso(20)]], gaps: [] }],
    ['a periodic snapshot joins', [gen('a', 0, [10]), gen('b', 15, [30], 'a')], { ranges: [[iso(0), iso(30)]], gaps: [] }],
    [
      'continuity lost',
      [gen('a', 0, [10]), gen('b', 50, [60], null, 'continuity with db was lost (x)')],
      { ranges: [[iso(0), iso(10)], [iso(50), iso(60)]], gaps: [[iso(10), iso(50), 'a new generation started: continuity with db was lost (x)']] },
    ],
    [
      'a missing segment cuts its generation short',
      [gen('a', 0, [10, [3, 30], [4, 40]])],
      { ranges: [[iso(0), iso(10)]], gaps: [[iso(10), iso(40), 'segment 2 of generation a is missing: nothing after it in that generation can be restored']] },
    ],
    [
      'a generation after a hole does not join even if it says it continues',
      [gen('a', 0, [10, [3, 30]]), gen('b', 35, [45], 'a')],
      { ranges: [[iso(0), iso(10)], [iso(35), iso(45)]], gaps: [[iso(10), iso(30), 'segment 2 of generation a is missing: nothing after it in that generation can be restored'], [iso(30), iso(35), 'a new generation started: start']] },
    ],
  ];
  for (const [what, generations, expected] of cases) assert.deepEqual(shown(archiveView(generations)), expected, what);
  // A generation without its record (a crash while its snapshot was written) is no start.
  assert.deepEqual(archiveView([{ ...gen('a', 0, [10]), record: undefined }]).ranges, []);
});

test('a restore takes the nearest earlier snapshot and every segment seen committed at or before the time; outside the window it names the window', () => {
  const generations = [gen('a', 0, [10, 20]), gen('b', 25, [30], 'a'), gen('c', 100, [110], null, 'lost')];
  const pick = (at: number) => {
    const p = pickRestore(generations, new Date(T0 + at));
    return typeof p === 'string' ? p : [p.generation.name, p.segments.map((s) => s.sequence)];
  };
  assert.deepEqual(pick(0), ['a', []]);
  assert.deepEqual(pick(9), ['a', []]);
  assert.deepEqual(pick(10), ['a', [1]]);
  assert.deepEqual(pick(22), ['a', [1, 2]], 'between a last segment and the continuing snapshot');
  assert.deepEqual(pick(25), ['b', []]);
  assert.deepEqual(pick(30), ['b', [1]]);
  assert.deepEqual(pick(110), ['c', [1]]);
  assert.equal(pick(50), `${iso(50)} is outside the window one can restore into: ${iso(0)} .. ${iso(30)}, ${iso(100)} .. ${iso(110)}`);
  assert.equal(pick(111), `${iso(111)} is outside the window one can restore into: ${iso(0)} .. ${iso(30)}, ${iso(100)} .. ${iso(110)}`);
  assert.equal(pickRestore([], new Date(T0)), 'the archive holds no generation yet');
});

test('retention keeps what restoring any moment of the last retention_days needs, whole generations, and always the newest', () => {
  const now = new Date(T0 + 40 * DAY);
  const plan = (generations: ArchivedGeneration[], days = 30) => planArchiveRetention(generations, now, days);
  // Cut-off at day 10.
  const cases: Array<[string, ArchivedGeneration[], string[]]> = [
    ['old and ended before the cut-off', [gen('a', 0, [1 * DAY]), gen('b', 20 * DAY, [21 * DAY])], ['a']],
    ['reaches into the window through its last segment: kept with its snapshot and every segment', [gen('a', 0, [1 * DAY, 11 * DAY]), gen('b', 20 * DAY, [21 * DAY])], []],
    ['continued after the cut-off: the moments up to the next start need it', [gen('a', 0, [1 * DAY]), gen('b', 12 * DAY, [21 * DAY], 'a')], []],
    ['continued before the cut-off: the next one restores the cut-off', [gen('a', 0, [1 * DAY]), gen('b', 5 * DAY, [21 * DAY], 'a')], ['a']],
    ['the newest, idle for longer than the window, is kept', [gen('a', 0, [1 * DAY]), gen('b', 2 * DAY, [])], ['a']],
    ['nothing to remove', [gen('a', 30 * DAY, [31 * DAY])], []],
  ];
  for (const [what, generations, removed] of cases) {
    const result = plan(generations);
    assert.deepEqual(result.remove, removed, what);
    assert.deepEqual([...result.keep, ...result.remove].sort(), generations.map((g) => g.name).sort(), `${what}: every generation decided`);
  }
  assert.deepEqual(plan([gen('a', 0, [1 * DAY]), gen('b', 2 * DAY, [3 * DAY]), gen('c', 4 * DAY, [5 * DAY])], 1).remove, ['a', 'b']);
});
