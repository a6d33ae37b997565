import type { EngineBackup } from './engine-backup.js';
import { postgresBackup } from './postgres-backup.js';
import { sqliteBackup } from './sqlite-backup.js';

const BY_ENGINE: Record<'sqlite' | 'postgresql', EngineBackup> = { sqlite: sqliteBackup, postgresql: postgresBackup };

/** The adapter for a database's engine (a backup's manifest names the same engines). */
export function engineBackupFor(engine: 'sqlite' | 'postgresql'): EngineBackup {
  return BY_ENGINE[engine];
}
