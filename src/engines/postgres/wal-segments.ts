/**
 * WAL segment names and positions, as PostgreSQL spells them: pure functions,
 * no I/O. A segment file is `TTTTTTTTXXXXXXXXYYYYYYYY` (timeline, then the
 * segment number split in "log" and "seg" halves); a position (LSN) `X/Y`.
 */

/** The default segment size (`wal_segment_size`, fixed at initdb): 16 MiB. */
export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const HISTORY_NAME = /^([0-9A-F]{8})\.history$/;

export interface SegmentName {
  name: string;
  timeline: number;
  /** The segment's number counted from LSN 0: its first byte is at `segno * segmentBytes`. */
  segno: bigint;
}

/** The name's parts, or undefined when `name` is not a WAL segment's (a `.partial`, a `.history`, anything else). */
export function parseSegmentName(name: string, segmentBytes = DEFAULT_SEGMENT_BYTES): SegmentName | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return undefined;
  const perLog = 0x1_0000_0000n / BigInt(segmentBytes);
  return { name, timeline: parseInt(match[1]!, 16), segno: BigInt(`0x${match[2]}`) * perLog + BigInt(`0x${match[3]}`) };
}

export function segmentName(timeline: number, segno: bigint, segmentBytes = DEFAULT_SEGMENT_BYTES): string {
  const perLog = 0x1_0000_0000n / BigInt(segmentBytes);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / perLog)}${hex(segno % perLog)}`;
}

export function isHistoryFile(name: string): boolean {
  return HISTORY_NAME.test(name);
}

/** `16/B374D848` as a byte position. */
export function parseLsn(lsn: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!match) throw new Error(`not a WAL position: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`);
}

export function formatLsn(position: bigint): string {
  return `${(position >> 32n).toString(16).toUpperCase()}/${(position & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

/** The number of the segment holding the byte at `position`. */
export function segnoOf(position: bigint, segmentBytes = DEFAULT_SEGMENT_BYTES): bigint {
  return position / BigInt(segmentBytes);
}

/** Runs of consecutive segment numbers missing between the lowest and the highest of `segnos` (any timeline: a timeline switch repeats its segment, never skips one). */
export function missingRuns(segnos: readonly bigint[]): Array<{ from: bigint; to: bigint }> {
  const sorted = [...new Set(segnos)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const runs: Array<{ from: bigint; to: bigint }> = [];
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]! > sorted[i - 1]! + 1n) runs.push({ from: sorted[i - 1]! + 1n, to: sorted[i]! - 1n });
  }
  return runs;
}
