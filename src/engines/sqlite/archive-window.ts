/**
 * What a SQLite archive lets a user restore into, and what a restore to a
 * moment takes: plain functions of the generations and their segments (names,
 * sequence numbers, times). No I/O: archive-catalogue.ts reads the listing.
 *
 * A generation restores every moment from its start (its snapshot) to its
 * last segment of an unbroken run 1, 2, 3…: a missing segment makes every
 * later one useless (frames apply on top of all before them). A generation
 * that continues the one before it (a periodic snapshot) joins it without a
 * gap; any other start of a generation follows a gap whose reason it records.
 */
import type { TimeRange } from '../../backup/point-in-time.js';

export interface ArchivedSegment {
  key: string;
  sequence: number;
  committedMs: number;
  size: number;
}

export interface ArchivedGeneration {
  name: string;
  startedMs: number;
  /** From generation.json; undefined when it is missing (a crash's leftover or a generation being started). */
  record: { reason: string; continues: string | null; snapshotKey: string } | undefined;
  /** In sequence order. */
  segments: ArchivedSegment[];
}

export type Gap = TimeRange & { reason: string };

interface Span {
  generation: ArchivedGeneration;
  /** The last moment it restores (its last segment of the unbroken run, else its start). */
  endMs: number;
  /** The segments it can apply, in order. */
  usable: ArchivedSegment[];
  /** The first missing segment, when the run breaks. */
  hole: { sequence: number; untilMs: number } | undefined;
}

function spanOf(generation: ArchivedGeneration): Span {
  const usable: ArchivedSegment[] = [];
  for (const segment of generation.segments) {
    if (segment.sequence !== usable.length + 1) break;
    usable.push(segment);
  }
  const rest = generation.segments.slice(usable.length);
  const endMs = usable.at(-1)?.committedMs ?? generation.startedMs;
  const hole = rest.length > 0 ? { sequence: usable.length + 1, untilMs: rest.at(-1)!.committedMs } : undefined;
  return { generation, endMs, usable, hole };
}

function complete(generations: readonly ArchivedGeneration[]): ArchivedGeneration[] {
  return generations.filter((g) => g.record !== undefined).sort((a, b) => a.startedMs - b.startedMs || (a.name < b.name ? -1 : 1));
}

/** The ranges one can restore into and the holes in between, oldest first. */
export function archiveView(generations: readonly ArchivedGeneration[]): { ranges: TimeRange[]; gaps: Gap[] } {
  const ranges: TimeRange[] = [];
  const gaps: Gap[] = [];
  let previous: Span | undefined;
  for (const generation of complete(generations)) {
    const span = spanOf(generation);
    const joins = previous !== undefined && previous.hole === undefined && generation.record!.continues === previous.generation.name;
    if (joins) ranges.at(-1)!.to = new Date(span.endMs);
    else {
      if (previous) {
        const fromMs = previous.hole ? previous.hole.untilMs : previous.endMs;
        if (generation.startedMs > fromMs) gaps.push({ from: new Date(fromMs), to: new Date(generation.startedMs), reason: `a new generation started: ${generation.record!.reason}` });
      }
      ranges.push({ from: new Date(generation.startedMs), to: new Date(span.endMs) });
    }
    if (span.hole) {
      const reason = `segment ${span.hole.sequence} of generation ${generation.name} is missing: nothing after it in that generation can be restored`;
      gaps.push({ from: new Date(span.endMs), to: new Date(span.hole.untilMs), reason });
    }
    previous = span;
  }
  return { ranges, gaps };
}

export interface RestorePick {
  generation: ArchivedGeneration;
  /** The segments to apply on the snapshot, in order: every one seen committed at or before the time. */
  segments: ArchivedSegment[];
}

/** The nearest earlier snapshot and its segments up to `time`; a reason string (naming the window) when the time is outside it. */
export function pickRestore(generations: readonly ArchivedGeneration[], time: Date): RestorePick | string {
  const { ranges } = archiveView(generations);
  const at = time.getTime();
  if (!ranges.some((r) => at >= r.from.getTime() && at <= r.to.getTime())) {
    return ranges.length === 0 ? 'the archive holds no generation yet' : `${time.toISOString()} is outside the window one can restore into: ${describeRanges(ranges)}`;
  }
  const generation = complete(generations).filter((g) => g.startedMs <= at).at(-1)!;
  return { generation, segments: spanOf(generation).usable.filter((s) => s.committedMs <= at) };
}

export function describeRanges(ranges: readonly TimeRange[]): string {
  return ranges.map((r) => `${r.from.toISOString()} .. ${r.to.toISOString()}`).join(', ');
}
