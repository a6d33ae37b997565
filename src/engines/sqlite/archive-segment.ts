/**
 * One archived segment: what one read of a primary's WAL found committed, as
 * the newest image of each page it changed and the database's size after it.
 * Every transaction of a segment was seen committed by the same read, so one
 * time stands for all of them: a restore takes whole segments.
 *
 * Bytes: a JSON header line, then for each page (ascending) its number
 * (4 bytes, big-endian) and its image. The whole is gzipped when that saves
 * at least a tenth (pages of text and indexes do; random blobs do not).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';

export interface SegmentHeader {
  format: 'dr-sidecar sqlite archive segment';
  version: 1;
  database: string;
  generation: string;
  sequence: number;
  /** When the read that found these transactions ended: each was committed at or before it. */
  committed_at: string;
  committed_ms: number;
  transactions: number;
  frames: number;
  page_size: number;
  /** Pages of the database after the segment's last transaction. */
  db_pages: number;
  pages: number;
  /** SHA-256 of the page records (numbers and images), as written before compression. */
  sha256: string;
}

export type SegmentFields = Omit<SegmentHeader, 'format' | 'version' | 'pages' | 'sha256' | 'committed_at'>;

/** The segment's bytes, and whether they are gzipped. */
export function encodeSegment(fields: SegmentFields, images: ReadonlyMap<number, Buffer>): { bytes: Buffer; compressed: boolean } {
  const pages = [...images.keys()].sort((a, b) => a - b);
  const records = Buffer.alloc(pages.length * (4 + fields.page_size));
  let at = 0;
  for (const page of pages) {
    records.writeUInt32BE(page, at);
    images.get(page)!.copy(records, at + 4);
    at += 4 + fields.page_size;
  }
  const header: SegmentHeader = {
    format: 'dr-sidecar sqlite archive segment',
    version: 1,
    ...fields,
    committed_at: new Date(fields.committed_ms).toISOString(),
    pages: pages.length,
    sha256: createHash('sha256').update(records).digest('hex'),
  };
  const raw = Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), records]);
  const gzipped = gzipSync(raw, { level: 1 });
  return gzipped.length <= raw.length * 0.9 ? { bytes: gzipped, compressed: true } : { bytes: raw, compressed: false };
}

export class SegmentDamaged extends Error {}

/**
 * Reads a segment (already gunzipped) as it streams: the header first, then
 * each page to `onPage`. Throws SegmentDamaged when the bytes do not add up.
 */
export async function readSegment(content: Readable, onPage: (page: number, image: Buffer) => void | Promise<void>): Promise<SegmentHeader> {
  let buffered: Buffer = Buffer.alloc(0);
  let header: SegmentHeader | undefined;
  const hash = createHash('sha256');
  let pages = 0;
  for await (const chunk of content as AsyncIterable<Buffer>) {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (!header) {
      const newline = buffered.indexOf(0x0a);
      if (newline < 0) {
        if (buffered.length > 64 * 1024) throw new SegmentDamaged('no header line in its first 64 KB');
        continue;
      }
      header = parseHeader(buffered.subarray(0, newline).toString('utf8'));
      buffered = buffered.subarray(newline + 1);
    }
    const record = 4 + header.page_size;
    let at = 0;
    while (buffered.length - at >= record) {
      const bytes = buffered.subarray(at, at + record);
      hash.update(bytes);
      await onPage(bytes.readUInt32BE(0), bytes.subarray(4));
      pages++;
      at += record;
    }
    buffered = buffered.subarray(at);
  }
  if (!header) throw new SegmentDamaged('it has no header');
  if (buffered.length !== 0 || pages !== header.pages) throw new SegmentDamaged(`it holds ${pages} whole pages and ${buffered.length} bytes more; its header says ${header.pages} pages`);
  const digest = hash.digest('hex');
  if (digest !== header.sha256) throw new SegmentDamaged(`its pages' checksum is ${digest}; its header says ${header.sha256}`);
  return header;
}

function parseHeader(text: string): SegmentHeader {
  let header: SegmentHeader;
  try {
    header = JSON.parse(text) as SegmentHeader;
  } catch {
    throw new SegmentDamaged('its header is not JSON');
  }
  if (header?.format !== 'dr-sidecar sqlite archive segment' || header.version !== 1) throw new SegmentDamaged('its header is not a dr-sidecar segment header of version 1');
  if (!Number.isInteger(header.page_size) || header.page_size < 512 || header.page_size > 65536) throw new SegmentDamaged(`its header names an impossible page size (${header.page_size})`);
  return header;
}
