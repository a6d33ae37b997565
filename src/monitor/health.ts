import type { ProbeResult } from '../engines/engine.js';

/** What the sidecar knows of one database's health, built from its probes. */
export interface DatabaseHealth {
  name: string;
  status: 'unknown' | 'up' | 'down';
  last: ProbeResult | undefined;
  /** Failed probes in a row; 0 after any success. */
  consecutiveFailures: number;
  /** Failed probes since the sidecar started. */
  errorCount: number;
  probes: number;
  /** Epoch ms of the last probe that found it up / down. */
  lastUpAt: number | undefined;
  lastDownAt: number | undefined;
  /** The latest failure's reason, kept after the database recovers. */
  lastError: string | undefined;
  /** Epoch ms when the current run of failures began; undefined while up. */
  failingSince: number | undefined;
}

export function initialHealth(name: string): DatabaseHealth {
  return {
    name,
    status: 'unknown',
    last: undefined,
    consecutiveFailures: 0,
    errorCount: 0,
    probes: 0,
    lastUpAt: undefined,
    lastDownAt: undefined,
    lastError: undefined,
    failingSince: undefined,
  };
}

export function applyProbe(health: DatabaseHealth, result: ProbeResult): DatabaseHealth {
  if (result.up) {
    return { ...health, status: 'up', last: result, consecutiveFailures: 0, probes: health.probes + 1, lastUpAt: result.checkedAt, failingSince: undefined };
  }
  return {
    ...health,
    status: 'down',
    last: result,
    consecutiveFailures: health.consecutiveFailures + 1,
    errorCount: health.errorCount + 1,
    probes: health.probes + 1,
    lastDownAt: result.checkedAt,
    lastError: result.error,
    failingSince: health.failingSince ?? result.checkedAt - result.responseTimeSeconds * 1000,
  };
}

/** A database counts as failed once `threshold` probes in a row have failed; a slow answer is not a failure. */
export function hasFailed(health: DatabaseHealth, threshold: number): boolean {
  return health.consecutiveFailures >= threshold;
}
