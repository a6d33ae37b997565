import { baseBackup } from '../engines/postgres/base-backup.js';
import type { EngineBackup } from './engine-backup.js';
import type { BackupFormat } from './naming.js';
import { postgresBackup } from './postgres-backup.js';
import { sqliteBackup } from './sqlite-backup.js';

const BY_ENGINE: Record<'sqlite' | 'postgresql', EngineBackup> = { sqlite: sqliteBackup, postgresql: postgresBackup };
const BY_FORMAT: Record<BackupFormat, EngineBackup> = { 'sqlite-database': sqliteBackup, 'postgresql-custom': postgresBackup, 'postgresql-base': baseBackup };

/** The adapter for a database's engine; with continuous archiving on, PostgreSQL's takes base backups. */
export function engineBackupFor(engine: 'sqlite' | 'postgresql', archived = false): EngineBackup {
  return engine === 'postgresql' && archived ? baseBackup : BY_ENGINE[engine];
}

/** The adapter that reads a backup of this format (its manifest says which). */
export function engineBackupOfFormat(format: BackupFormat): EngineBackup {
  return BY_FORMAT[format];
}
