import type { DatabaseConfig } from '../../config/load.js';
import { readSqliteFile } from '../sqlite-file.js';

/**
 * Why the secondaries of a SQLite primary cannot follow its WAL (it is not in
 * WAL mode), with the PRAGMA that fixes it; undefined when they can, or when
 * it has no SQLite secondary. Read from the file's header (bytes 18-19 are 2
 * in WAL mode), so any process can tell, without opening the database.
 */
export function replicationWarning(primary: DatabaseConfig, databases: readonly DatabaseConfig[]): string | undefined {
  if (primary.target.engine !== 'sqlite') return undefined;
  if (!databases.some((d) => d !== primary && d.enabled && d.target.engine === 'sqlite')) return undefined;
  let header;
  try {
    header = readSqliteFile(primary.target.file).header;
  } catch {
    return undefined;
  }
  if (!header || 'problem' in header || header.walMode) return undefined;
  return `${primary.name} is not in WAL mode, so its secondaries get whole-file copies (at most once a minute) instead of its WAL frames: run PRAGMA journal_mode=WAL on it`;
}
