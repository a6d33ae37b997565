import type { Counter } from 'prom-client';
import type { Logger } from '../log.js';
import type { Notifier } from '../notifications/notifier.js';
import type { AlertRecord, StateStore } from '../state/store.js';
import { decide, type ActionContext, type AlertDecision } from './actions.js';
import type { WebhookAlert, WebhookPayload } from './payload.js';
import { inSpan } from '../telemetry/tracing.js';

export interface ReceiverDeps {
  store: StateStore;
  log: Logger;
  notifier: Notifier;
  notificationsEnabled: boolean;
  counter: Counter<'action' | 'result'>;
  context(): ActionContext;
  /** Fails over away from `database` (the current primary); resolves with a one-line result. */
  failover(database: string, reason: string): Promise<string>;
  backup(database: string | null, reason: string): Promise<string>;
}

export interface Receipt {
  received: number;
  duplicates: number;
  decisions: AlertDecision[];
}

/**
 * Thrown by an action that found nothing to do because the world moved on
 * between the alert and the action (another failover under way, the primary
 * already replaced or answering again): counted and notified as suppressed, not failed.
 */
export class ActionSuppressed extends Error {
  override readonly name = 'ActionSuppressed';
}

/** What became of a delivered alert: the result label of dr_alert_notifications_total. */
export type AlertResult = 'executed' | 'failed' | 'suppressed' | 'recorded' | 'resolved' | 'ignored';

/**
 * Takes Alertmanager deliveries: records every alert once (a re-delivery is a
 * duplicate and does nothing), logs it, notifies, and runs the action it maps
 * to after the delivery has been answered.
 */
export class AlertReceiver {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: ReceiverDeps) {}

  /** Records the delivery; throws only when the record could not be written (Alertmanager then retries). */
  receive(payload: WebhookPayload): Promise<Receipt> {
    return inSpan('alertmanager.webhook', { 'dr.alerts': payload.alerts.length, 'dr.status': payload.status }, async (span) => {
      const receipt = await this.record(payload);
      span.setAttributes({ 'dr.duplicates': receipt.duplicates, 'dr.actions': receipt.decisions.filter((d) => d.outcome === 'execute').length });
      return receipt;
    });
  }

  private async record(payload: WebhookPayload): Promise<Receipt> {
    const receipt: Receipt = { received: payload.alerts.length, duplicates: 0, decisions: [] };
    const context = this.deps.context();
    for (const alert of payload.alerts) {
      const decision = decide(alert, context);
      const fresh = await this.deps.store.recordAlert(toRecord(alert, decision));
      if (!fresh) {
        receipt.duplicates++;
        this.deps.counter.inc({ action: decision.action, result: 'duplicate' });
        continue;
      }
      receipt.decisions.push(decision);
      this.deps.log[alert.status === 'firing' ? 'warn' : 'info'](
        { alertname: decision.alertname, database: decision.database, status: alert.status, action: decision.action, outcome: decision.outcome },
        `disaster-recovery alert ${decision.alertname} (${alert.status}) for ${decision.database ?? '-'}: ${decision.outcome}, ${decision.why}`,
      );
      if (decision.outcome === 'execute') {
        this.execute(alert, decision);
      } else {
        this.deps.counter.inc({ action: decision.action, result: decision.outcome });
        this.notify(alert, decision, decision.outcome, null);
      }
    }
    return receipt;
  }

  /** Waits for actions under way (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private execute(alert: WebhookAlert, decision: AlertDecision): void {
    const reason = `alert ${decision.alertname} for ${decision.database ?? '-'}`;
    const run = (async () => {
      let result: string;
      let outcome: AlertResult = 'executed';
      try {
        result =
          decision.action === 'failover'
            ? await this.deps.failover(decision.database!, reason)
            : await this.deps.backup(decision.database, reason);
      } catch (error) {
        outcome = error instanceof ActionSuppressed ? 'suppressed' : 'failed';
        result = `${outcome}: ${(error as Error).message}`;
      }
      this.deps.counter.inc({ action: decision.action, result: outcome });
      this.deps.log[outcome === 'failed' ? 'error' : 'warn'](
        { alertname: decision.alertname, database: decision.database, action: decision.action, outcome, result },
        `disaster-recovery alert action ${decision.action} for ${decision.alertname}: ${result}`,
      );
      await this.deps.store.finishAlert(decision.key, result).catch((e) => this.deps.log.error({ err: e }, 'disaster-recovery alert: result not recorded'));
      this.notify(alert, decision, outcome, result);
    })();
    const tracked = run.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  /** The guide's third step of alert handling: every alert received (once, not its re-deliveries) is notified. */
  private notify(alert: WebhookAlert, decision: AlertDecision, outcome: AlertResult, result: string | null): void {
    if (!this.deps.notificationsEnabled) return;
    this.deps.notifier.notify({
      event: 'alert_action',
      summary: `alert ${decision.alertname} (${alert.status}) for ${decision.database ?? '-'}: ${decision.action} ${outcome}, ${result ?? decision.why}`,
      alertname: decision.alertname,
      database: decision.database,
      status: alert.status,
      action: decision.action,
      outcome,
      why: decision.why,
      result,
      startsAt: alert.startsAt,
      labels: alert.labels,
      annotations: alert.annotations,
    });
  }
}

function toRecord(alert: WebhookAlert, decision: AlertDecision): AlertRecord {
  return {
    key: decision.key,
    receivedAt: new Date().toISOString(),
    alertname: decision.alertname,
    database: decision.database,
    status: alert.status,
    action: decision.action,
    outcome: decision.outcome,
    why: decision.why,
    result: null,
  };
}
