import type { AlertAction } from './rules.js';
import type { WebhookAlert } from './payload.js';
import { cooldownLeft } from '../ha/detection.js';

export type AlertOutcome = 'execute' | 'recorded' | 'resolved' | 'suppressed' | 'ignored';

/** What the sidecar does with one delivered alert, and why. */
export interface AlertDecision {
  key: string;
  alertname: string;
  database: string | null;
  action: AlertAction | 'unknown';
  outcome: AlertOutcome;
  why: string;
}

export interface ActionContext {
  databases: readonly string[];
  currentPrimary: string | undefined;
  autoFailoverEnabled: boolean;
  /** Epoch ms of the last automatic (monitor or alert) failover, and the cooldown after it, as the HA loop keeps them. */
  lastAutoFailoverAt?: number | undefined;
  cooldownSeconds?: number;
  now?: number;
  /** A failover or switchover of this process is under way. */
  failoverUnderWay?: boolean;
}

/** Alertmanager may deliver one alert many times: one action per (fingerprint, startsAt), firing or resolved. */
export function alertKey(alert: WebhookAlert): string {
  return `${alert.fingerprint}@${alert.startsAt}:${alert.status}`;
}

const ACTIONS = new Set(['failover', 'backup', 'none']);

/**
 * Maps an alert to an action by its `dr_action` label. Resolved alerts are
 * recorded, never acted on. A failover is admitted only when automatic
 * failover is enabled, the alert names the current primary, no failover is
 * under way, and the cooldown since the last automatic failover (the
 * monitor's or an alert's: one cooldown) has passed. Admitted, it replaces
 * the primary by a switchover if it still answers, by a failover if not.
 */
export function decide(alert: WebhookAlert, context: ActionContext): AlertDecision {
  const database = alert.labels.database ?? null;
  const raw = alert.labels.dr_action ?? 'none';
  const action: AlertAction | 'unknown' = ACTIONS.has(raw) ? (raw as AlertAction) : 'unknown';
  const base = { key: alertKey(alert), alertname: alert.labels.alertname ?? 'unnamed', database, action };
  if (alert.status === 'resolved') return { ...base, outcome: 'resolved', why: 'resolved alerts are recorded, not acted on' };
  if (action === 'unknown') return { ...base, outcome: 'ignored', why: `unknown dr_action "${raw}" (expected failover, backup or none)` };
  if (database !== null && !context.databases.includes(database)) {
    return { ...base, outcome: 'ignored', why: `unknown database "${database}"` };
  }
  if (action === 'none') return { ...base, outcome: 'recorded', why: 'the rule asks for no action' };
  if (action === 'backup') return { ...base, outcome: 'execute', why: `backup of ${database ?? 'the current primary'}` };
  if (!context.autoFailoverEnabled) return { ...base, outcome: 'suppressed', why: 'automatic failover is disabled' };
  if (database === null) return { ...base, outcome: 'suppressed', why: 'the alert names no database' };
  if (database !== context.currentPrimary) {
    return { ...base, outcome: 'suppressed', why: `${database} is not the current primary (${context.currentPrimary ?? 'none'})` };
  }
  if (context.failoverUnderWay) return { ...base, outcome: 'suppressed', why: 'a failover is already under way' };
  const { lastAutoFailoverAt, cooldownSeconds = 0, now = Date.now() } = context;
  const cooling = cooldownLeft({ lastAutoFailoverAt, cooldownSeconds, now });
  if (cooling > 0) {
    return { ...base, outcome: 'suppressed', why: `the last automatic failover was less than ${cooldownSeconds} s ago (cooldown, ${Math.ceil(cooling)} s left)` };
  }
  return { ...base, outcome: 'execute', why: `replace the primary ${database} (switchover if it still answers, failover if not)` };
}
