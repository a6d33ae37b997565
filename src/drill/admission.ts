/**
 * Whether a drill may start now. A drill proves failover and restore work on a
 * healthy cluster; it never adds a switchover to a cluster that is already busy
 * or fragile, and it never overrides an operator who turned automatic failover off.
 */
import type { DrillKind } from './drill-record.js';

export interface DrillAdmissionInput {
  kind: DrillKind;
  autoFailoverEnabled: boolean;
  /** A drill already running in this process. */
  drillUnderWay: boolean;
  failoverUnderWay: boolean;
  /** Databases with a backup or restore under way in this process. */
  backupsUnderWay: string[];
  primary: string | undefined;
  /** Secondaries of the primary's engine, with their lag as last observed (undefined: unknown). */
  secondaries: Array<{ name: string; up: boolean; lagSeconds: number | undefined }>;
  /** failover.max_lag_on_failover; undefined: no bound. */
  maxLagSeconds: number | undefined;
}

export type DrillAdmission = { admit: true } | { admit: false; why: string };

export function admitDrill(input: DrillAdmissionInput): DrillAdmission {
  const refuse = (why: string): DrillAdmission => ({ admit: false, why });
  if (!input.autoFailoverEnabled) return refuse('automatic failover is disabled (disable-auto-failover, or the config): an operator holds the cluster, so no drill runs');
  if (input.drillUnderWay) return refuse('another drill is under way');
  if (input.failoverUnderWay) return refuse('a failover is under way');
  if (input.backupsUnderWay.length > 0) return refuse(`a backup or restore of ${input.backupsUnderWay.join(', ')} is under way`);
  if (input.kind !== 'switchover') return { admit: true };
  if (input.primary === undefined) return refuse('there is no current primary to switch over');
  if (input.maxLagSeconds !== undefined) {
    const lagging = input.secondaries.filter((s) => s.up && s.lagSeconds !== undefined && s.lagSeconds > input.maxLagSeconds!);
    if (lagging.length > 0) {
      const which = lagging.map((s) => `${s.name} ${s.lagSeconds!.toFixed(1)} s`).join(', ');
      return refuse(`a secondary lags more than max_lag_on_failover (${input.maxLagSeconds} s): ${which}`);
    }
  }
  return { admit: true };
}
