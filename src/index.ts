/** The library API for applications: `import { DisasterRecoveryManager } from 'dr-sidecar'`. */
export { DisasterRecoveryManager, type ManagerOptions } from './manager.js';
export type { Session } from './session.js';
export { DisasterRecoveryService } from './sidecar.js';
export { loadConfig, parseConfig, type Config, type DatabaseConfig } from './config/load.js';
export { ConfigError, ConflictError, DrError, InputError } from './errors.js';
export { StateStoreMissing, StateStoreUnusable } from './state/location.js';
export { ClusterStateUnconfirmed } from './state/confirmed-state.js';
export type { FailoverRecord, ClusterState } from './state/store.js';
export type { StatusReport, DatabaseStatus } from './status.js';
export type { BackupRecord } from './backup/backups.js';
