import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { commitFile, temporaryNameFor } from '../engines/durable-file.js';
import { ensurePrivateFolder, writePrivateFile } from '../engines/private-file.js';

/**
 * What arrived at one destination, remembered in a small file under
 * `backup_dir/.offsite/` (hidden, so never mirrored itself). It saves
 * re-reading every object on every pass; it is not the truth: each pass lists
 * the destination and forgets what is no longer there, and an index that is
 * lost is rebuilt by checking the objects (size, then checksum) again.
 */
const arrivalSchema = z.object({
  /** The local file as it was when it was copied: a change (a manifest rewritten by verify) means copy again. */
  size: z.number(),
  mtime_ms: z.number(),
  sha256: z.string(),
  /** When its checksum was verified on the destination. */
  at: z.string(),
});

const indexSchema = z.object({
  destination: z.string(),
  objects: z.record(z.string(), arrivalSchema),
  last_arrived: z.object({ key: z.string(), at: z.string() }).nullable(),
  last_success_at: z.string().nullable(),
  last_error: z.object({ message: z.string(), at: z.string() }).nullable(),
  /** created_at of the destination's manifests, by key and size, for its retention (saves downloading them each pass). */
  created: z.record(z.string(), z.object({ size: z.number(), created_at: z.string(), good: z.boolean() })).default({}),
});

export type Arrival = z.infer<typeof arrivalSchema>;
export type OffsiteIndexData = z.infer<typeof indexSchema>;

export const OFFSITE_INDEX_DIR = '.offsite';

export function emptyIndex(destination: string): OffsiteIndexData {
  return { destination, objects: {}, last_arrived: null, last_success_at: null, last_error: null, created: {} };
}

/** `backup_dir/.offsite/<destination as a file name>.json` */
export function indexPathOf(backupDir: string, destination: string): string {
  const slug = destination.replace(/^[a-z0-9]+:\/\//i, '').replace(/[^A-Za-z0-9._-]+/g, '_');
  return path.join(backupDir, OFFSITE_INDEX_DIR, `${slug}.json`);
}

/** The index of a destination; an empty one when it is missing or unreadable (it is rebuilt from the destination). */
export function readIndex(file: string, destination: string): OffsiteIndexData {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return emptyIndex(destination);
  }
  try {
    const parsed = indexSchema.safeParse(JSON.parse(text));
    return parsed.success && parsed.data.destination === destination ? parsed.data : emptyIndex(destination);
  } catch {
    return emptyIndex(destination);
  }
}

/** Owner-only, temporary name, fsync, rename: a reader sees the old index or the new one. */
export function writeIndex(file: string, index: OffsiteIndexData): void {
  ensurePrivateFolder(path.dirname(file));
  const temporary = temporaryNameFor(file);
  try {
    writePrivateFile(temporary, `${JSON.stringify(index)}\n`);
    commitFile(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}
