/**
 * The library's historical entry point: the sidecar is wired in sidecar.ts, the
 * requests that change the cluster are in ha/requests.ts, status in status.ts.
 */
export { Sidecar as DisasterRecoveryService } from './sidecar.js';
