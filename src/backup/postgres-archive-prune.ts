import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../engines/durable-file.js';
import { archivePaths } from '../engines/postgres/archive-layout.js';
import { parseLsn, parseSegmentName, segnoOf } from '../engines/postgres/wal-segments.js';
import { planArchiveRetention } from './archive-retention.js';
import type { Catalogue, CatalogueEntry } from './catalogue.js';

/** Applies the archive's retention to a database's base backups and archived segments in `backup_dir`; returns the backups removed and the count of segments. */
export function pruneArchive(catalogue: Catalogue, database: string, retentionDays: number, now: Date): { backups: CatalogueEntry[]; segments: number } {
  const bases = catalogue.list(database).filter((e) => e.manifest?.format === 'postgresql-base' && e.manifest.wal && e.problem === undefined);
  const byId = new Map(bases.map((e) => [e.path, e]));
  const paths = archivePaths(catalogue.root, database);
  const walFiles = readDir(paths.wal);
  const segments = walFiles.flatMap((file) => {
    const parsed = parseSegmentName(file.replace(/\.gz$/, ''));
    return parsed ? [{ id: file, segno: parsed.segno }] : [];
  });
  const plan = planArchiveRetention(
    bases.map((e) => ({ id: e.path, consistentAt: new Date(e.manifest!.finished_at), startSegno: segnoOf(parseLsn(e.manifest!.wal!.start_lsn)) })),
    segments,
    retentionDays,
    now,
  );
  const removed = plan.removeBackups.map((b) => byId.get(b.id)!);
  for (const entry of removed) catalogue.remove(entry);
  // Backups first: a crash between leaves segments no backup needs, never a backup without its segments.
  for (const s of plan.removeSegments) {
    fs.rmSync(path.join(paths.wal, s.id), { force: true });
    fs.rmSync(path.join(paths.times, `${s.id.replace(/\.gz$/, '')}.json`), { force: true });
  }
  if (plan.removeSegments.length > 0) fsyncDir(paths.wal);
  return { backups: removed, segments: plan.removeSegments.length };
}

function readDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}
