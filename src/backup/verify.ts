import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { fileDigest, readBackupContent } from './backup-file.js';
import type { FetchedBackup, SourcedBackup } from './backup-sources.js';
import type { Backups } from './backups.js';
import type { CatalogueEntry } from './catalogue.js';
import { ScratchUnavailableError, type TableCounts } from './engine-backup.js';
import { engineBackupOfFormat } from './engines.js';
import type { Manifest } from './manifest.js';

export interface VerifyResult {
  file: string;
  database: string;
  ok: boolean;
  /** What was proven, or why the backup is bad. */
  detail: string;
  /** Rows per table found by the scratch restore. */
  tables: TableCounts | null;
}

/** One backup file (catalogued or not), or every backup of every database when `file` is undefined. */
export async function verifyBackups(backups: Backups, file?: string, onResult?: (result: VerifyResult) => void): Promise<VerifyResult[]> {
  const results: VerifyResult[] = [];
  const report = (result: VerifyResult) => {
    results.push(result);
    onResult?.(result);
  };
  if (file !== undefined) {
    const fetched = await backups.fetchOffsite(file);
    if (fetched) report(await verifyFetched(backups, fetched));
    else report(await verifyEntry(backups, entryOfFile(backups, file)));
    return results;
  }
  for (const entry of backups.list()) report(await verifyEntry(backups, entry));
  // Backups only a destination still has (the local folder lost, or pruned there first) are proven too.
  const local = new Set(backups.list().map((e) => e.path));
  for (const backup of await offsiteOnly(backups, local)) {
    let fetched: FetchedBackup;
    try {
      fetched = await backups.sources.fetch(backup);
    } catch (error) {
      report({ file: `${backup.storage.name}/${backup.key}`, database: backup.database, ok: false, detail: backups.deps.scrub((error as Error).message), tables: null });
      continue;
    }
    report(await verifyFetched(backups, fetched));
  }
  return results;
}

async function offsiteOnly(backups: Backups, local: Set<string>): Promise<SourcedBackup[]> {
  if (backups.sources.offsite.length === 0) return [];
  const all = await backups.sources.list();
  const root = backups.deps.config.backup.backup_dir;
  return all.filter((b) => b.storage !== backups.sources.local && !local.has(path.join(root, ...b.key.split('/'))));
}

/** A backup fetched from a destination, verified as a local one, reported under its offsite name. */
async function verifyFetched(backups: Backups, fetched: FetchedBackup): Promise<VerifyResult> {
  try {
    const result = await verifyEntry(backups, backups.catalogue.entryAt(fetched.file));
    return { ...result, file: `${fetched.backup.storage.name}/${fetched.backup.key}` };
  } finally {
    fetched.release();
  }
}

function entryOfFile(backups: Backups, file: string): CatalogueEntry {
  const absolute = path.resolve(file);
  if (!fs.existsSync(absolute)) throw new InputError(`no such backup file: ${absolute}`);
  return backups.catalogue.entryAt(absolute);
}

/**
 * Checksum first (cheap, and a corrupt file must not reach a restore), then a
 * real restore into a scratch place and its checks, then the rows per table
 * against those the manifest recorded at backup time. A conclusive result is
 * written into the manifest, where retention and status read it.
 */
async function verifyEntry(backups: Backups, entry: CatalogueEntry): Promise<VerifyResult> {
  const manifest = entry.manifest;
  const database = manifest?.database ?? entry.database;
  if (!manifest || !fs.existsSync(entry.path)) {
    return { file: entry.path, database, ok: false, detail: entry.problem ?? 'backup file is missing', tables: null };
  }
  let result: VerifyResult;
  try {
    result = await proveRestorable(backups, entry, manifest);
    record(backups, entry, manifest, result);
  } catch (error) {
    const detail = backups.deps.scrub((error as Error).message ?? String(error));
    const inconclusive = error instanceof ScratchUnavailableError;
    result = { file: entry.path, database, ok: false, detail: inconclusive ? `could not verify: ${detail}` : detail, tables: null };
    if (!inconclusive) record(backups, entry, manifest, result);
  }
  const log = backups.deps.log;
  if (result.ok) log.info({ file: entry.path, database }, `backup ${entry.path} verified: ${result.detail}`);
  else log.warn({ file: entry.path, database }, `backup ${entry.path} failed verification: ${result.detail}`);
  return result;
}

async function proveRestorable(backups: Backups, entry: CatalogueEntry, manifest: Manifest): Promise<VerifyResult> {
  const bad = (detail: string, tables: TableCounts | null = null): VerifyResult => ({ file: entry.path, database: manifest.database, ok: false, detail, tables });
  const digest = await fileDigest(entry.path);
  if (digest.sha256 !== manifest.sha256) return bad(`checksum mismatch: the file's sha256 is ${digest.sha256}, its manifest says ${manifest.sha256}`);
  if (digest.sizeBytes !== manifest.size_bytes) return bad(`size mismatch: ${digest.sizeBytes} bytes, its manifest says ${manifest.size_bytes}`);
  const db = backups.deps.config.topology.get(manifest.database);
  const check = await engineBackupOfFormat(manifest.format).check(readBackupContent(entry.path, manifest.compression === 'gzip'), path.dirname(entry.path), db);
  const differences = compareTables(manifest.tables, check.tables);
  if (differences) return bad(`restored, but ${differences}`, check.tables);
  const rows = Object.values(check.tables).reduce((sum, n) => sum + n, 0);
  const counted = manifest.tables ? 'as recorded at backup time' : '(no counts recorded at backup time)';
  return {
    file: entry.path,
    database: manifest.database,
    ok: true,
    detail: `sha256 ok, ${check.detail}, ${Object.keys(check.tables).length} table(s), ${rows} row(s) ${counted}`,
    tables: check.tables,
  };
}

/** The tables whose rows differ, in words; undefined when they match (or nothing was recorded). */
export function compareTables(recorded: TableCounts | null, restored: TableCounts): string | undefined {
  if (!recorded) return undefined;
  const names = [...new Set([...Object.keys(recorded), ...Object.keys(restored)])].sort();
  const differing = names
    .filter((n) => recorded[n] !== restored[n])
    .map((n) => `${n}: ${restored[n] ?? 'missing'} row(s) restored, ${recorded[n] ?? 'none'} recorded`);
  return differing.length > 0 ? `rows differ from the backup's record (${differing.join('; ')})` : undefined;
}

function record(backups: Backups, entry: CatalogueEntry, manifest: Manifest, result: VerifyResult): void {
  try {
    backups.catalogue.updateManifest(entry, { ...manifest, verification: { at: new Date().toISOString(), ok: result.ok, detail: result.detail } });
  } catch (error) {
    backups.deps.log.warn({ file: entry.path }, `backup verification result not recorded: ${(error as Error).message}`);
  }
}
