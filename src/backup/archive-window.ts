/**
 * What a PostgreSQL archive lets a user restore into: plain functions of the
 * base backups and the archived segments (their numbers and commit times).
 * No I/O: the adapter reads the catalogue and the archive's time records.
 */
import type { TimeRange } from './point-in-time.js';
import { missingRuns } from '../engines/postgres/wal-segments.js';

export interface ArchivedSegment {
  name: string;
  segno: bigint;
  timeline: number;
  /** The first and last commit recorded in the segment; undefined when it holds none (or its times were not recorded). */
  firstCommit: Date | undefined;
  lastCommit: Date | undefined;
}

export interface BaseBackupRef {
  /** Key of the backup file in its storage (`<db>/<file>`). */
  key: string;
  /** The backup is consistent from this moment on (its end). */
  consistentAt: Date;
  /** Segments from `startSegno` on are needed to restore it; up to `endSegno` to make it consistent. */
  startSegno: bigint;
  endSegno: bigint;
  /** Its own WAL (pg_basebackup -X fetch) carries it to its end without the archive. */
  selfContained: boolean;
}

/** A hole recorded by the archiver (a slot invalidated and recreated), to name the reason of a missing range. */
export interface ArchiveEvent {
  at: Date;
  reason: string;
}

export type Gap = TimeRange & { reason: string };

export interface ArchiveView {
  ranges: TimeRange[];
  gaps: Gap[];
}

interface Run {
  from: bigint;
  to: bigint;
  segments: ArchivedSegment[];
}

const bySegno = (a: { segno: bigint }, b: { segno: bigint }) => (a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0);

/** Consecutive runs of segment numbers; a hole between two runs is a gap. */
function runsOf(segments: readonly ArchivedSegment[]): Run[] {
  const sorted = [...segments].sort(bySegno);
  const runs: Run[] = [];
  for (const s of sorted) {
    const last = runs.at(-1);
    if (last && s.segno <= last.to + 1n) {
      last.to = s.segno > last.to ? s.segno : last.to;
      last.segments.push(s);
    } else runs.push({ from: s.segno, to: s.segno, segments: [s] });
  }
  return runs;
}

const lastCommitOf = (segments: readonly ArchivedSegment[]) =>
  segments.reduce<Date | undefined>((max, s) => (s.lastCommit && (!max || s.lastCommit > max) ? s.lastCommit : max), undefined);
const firstCommitOf = (segments: readonly ArchivedSegment[]) =>
  segments.reduce<Date | undefined>((min, s) => (s.firstCommit && (!min || s.firstCommit < min) ? s.firstCommit : min), undefined);

/**
 * The ranges one can restore into and the holes between them. A range runs
 * from the earliest base backup that is consistent inside a run of
 * consecutive segments to the last commit archived in that run; a hole runs
 * from the last commit before it to the first commit after it (the commits
 * in between are lost to the archive).
 */
export function archiveView(segments: readonly ArchivedSegment[], backups: readonly BaseBackupRef[], events: readonly ArchiveEvent[] = []): ArchiveView {
  const runs = runsOf(segments);
  const ranges: TimeRange[] = [];
  for (const run of runs) {
    const usable = backups.filter((b) => b.startSegno >= run.from && b.endSegno <= run.to);
    const start = usable.reduce<Date | undefined>((min, b) => (!min || b.consistentAt < min ? b.consistentAt : min), undefined);
    const end = lastCommitOf(run.segments);
    if (start && end && end >= start) ranges.push({ from: start, to: end });
    else if (start && usable.some((b) => b.selfContained)) ranges.push({ from: start, to: start });
  }
  const gaps: Gap[] = [];
  for (let i = 1; i < runs.length; i++) {
    const before = runs[i - 1]!;
    const after = runs[i]!;
    const from = lastCommitOf(before.segments) ?? firstCommitOf(before.segments);
    const to = firstCommitOf(after.segments) ?? lastCommitOf(after.segments);
    if (!from || !to) continue;
    const missing = missingRuns([before.to, after.from])[0]!;
    const event = events.find((e) => e.at >= from && e.at <= new Date(to.getTime() + 3_600_000));
    const count = missing.to - missing.from + 1n;
    const what = `${count} WAL segment(s) missing after ${before.segments.at(-1)!.name}`;
    gaps.push({ from, to, reason: event ? `${what}: ${event.reason}` : what });
  }
  return { ranges, gaps };
}

export interface RestorePick {
  base: BaseBackupRef;
  /** Segments to give the recovery, in order. */
  segments: ArchivedSegment[];
  /** False when the archive holds no commit after the time: replay to the end of the archive instead of stopping at the time (which PostgreSQL would call unreached). */
  stopAtTime: boolean;
}

/** The nearest earlier base backup and the segments from it to the first commit after `time`; a reason string when there is none. */
export function pickRestore(segments: readonly ArchivedSegment[], backups: readonly BaseBackupRef[], time: Date): RestorePick | string {
  const runs = runsOf(segments);
  const candidates = [...backups].filter((b) => b.consistentAt <= time).sort((a, b) => b.consistentAt.getTime() - a.consistentAt.getTime());
  for (const base of candidates) {
    const run = runs.find((r) => base.startSegno >= r.from && base.startSegno <= r.to);
    if (!run || base.endSegno > run.to) continue;
    const end = lastCommitOf(run.segments);
    if (!end || end < time) continue;
    const needed = run.segments.filter((s) => s.segno >= base.startSegno).sort(bySegno);
    const after = needed.find((s) => s.lastCommit && s.lastCommit > time);
    const stopAtTime = after !== undefined;
    const upTo = after ? needed.filter((s) => s.segno <= after.segno) : needed;
    return { base, segments: upTo, stopAtTime };
  }
  return candidates.length === 0 ? 'no base backup is consistent at or before that time' : 'the archive has a gap between the nearest base backup and that time';
}

/** Is `time` inside one of the ranges? */
export function withinRanges(ranges: readonly TimeRange[], time: Date): boolean {
  return ranges.some((r) => time >= r.from && time <= r.to);
}
