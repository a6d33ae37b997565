import { z } from 'zod';
import { BACKUP_FORMATS, type BackupFormat } from './naming.js';

export const BACKUP_TRIGGERS = ['manual', 'scheduled', 'api', 'alert', 'pre-restore'] as const;
export type BackupTrigger = (typeof BACKUP_TRIGGERS)[number];

const formats = Object.keys(BACKUP_FORMATS) as [BackupFormat, ...BackupFormat[]];
const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { error: 'expected an ISO date' });

/**
 * What the JSON file beside each backup says about it. The catalogue is the
 * set of these files: a backup without one is not catalogued, and one whose
 * file is missing or of another size is not good.
 */
export const manifestSchema = z.object({
  version: z.literal(1),
  /** The backup's file name, in the same folder as this manifest. */
  file: z.string().min(1),
  /** The configured database it was taken from. */
  database: z.string().min(1),
  engine: z.enum(['sqlite', 'postgresql']),
  format: z.enum(formats),
  compression: z.enum(['gzip', 'none']),
  compression_level: z.number().int().nullable(),
  name: z.string().min(1),
  trigger: z.enum(BACKUP_TRIGGERS),
  /** When the consistent snapshot was taken: the backup holds the data as of this moment. */
  created_at: isoDate,
  finished_at: isoDate,
  duration_seconds: z.number().nonnegative(),
  /** Of the file as stored (compressed when compressed). */
  size_bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  source: z.object({
    /** With the password masked. */
    url: z.string(),
    /** Size of the database when it was backed up. */
    size_bytes: z.number().nonnegative().nullable(),
  }),
  /** Rows per table as of the snapshot: what a restore must bring back. Null when unknown. */
  tables: z.record(z.string(), z.number().int().nonnegative()).nullable(),
  /** A base backup (`postgresql-base`): the WAL span it needs, so a point-in-time restore can pick the nearest earlier one. */
  wal: z.object({ timeline: z.number().int().positive(), start_lsn: z.string(), end_lsn: z.string() }).optional(),
  /** The last `verify` of this backup. */
  verification: z.object({ at: isoDate, ok: z.boolean(), detail: z.string() }).optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** Parses a manifest's text; the reason it is not one, as a string, otherwise. */
export function parseManifest(text: string): Manifest | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return `manifest is not JSON (${(error as Error).message})`;
  }
  const parsed = manifestSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return `manifest is invalid: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`;
}

export function manifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
