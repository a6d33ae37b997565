import type { Counter } from 'prom-client';
import type { Logger } from '../log.js';
import type { Notifier } from '../notifications/notifier.js';
import type { AlertRecord, StateStore } from '../state/store.js';
import { decide, type ActionContext, type AlertDecision } from './actions.js';
import type { WebhookAlert, WebhookPayload } from './payload.js';

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
 * Takes Alertmanager deliveries: records every alert once (a re-delivery is a
 * duplicate and does nothing), logs it, and runs the action it maps to after
 * the delivery has been answered.
 */
export class AlertReceiver {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: ReceiverDeps) {}

  /** Records the delivery; throws only when the record could not be written (Alertmanager then retries). */
  async receive(payload: WebhookPayload): Promise<Receipt> {
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
      this.deps.log.warn(
        { alertname: decision.alertname, database: decision.database, status: alert.status, action: decision.action, outcome: decision.outcome },
        `disaster-recovery alert ${decision.alertname} (${alert.status}) for ${decision.database ?? '-'}: ${decision.outcome}, ${decision.why}`,
      );
      if (decision.outcome === 'execute') this.execute(decision);
      else this.deps.counter.inc({ action: decision.action, result: decision.outcome });
    }
    return receipt;
  }

  /** Waits for actions under way (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private execute(decision: AlertDecision): void {
    const reason = `alert ${decision.alertname} for ${decision.database ?? '-'}`;
    const run = (async () => {
      let result: string;
      let ok = true;
      try {
        result =
          decision.action === 'failover'
            ? await this.deps.failover(decision.database!, reason)
            : await this.deps.backup(decision.database, reason);
      } catch (error) {
        ok = false;
        result = `failed: ${(error as Error).message}`;
      }
      this.deps.counter.inc({ action: decision.action, result: ok ? 'executed' : 'failed' });
      this.deps.log.warn({ alertname: decision.alertname, action: decision.action, result }, `disaster-recovery alert action ${decision.action}: ${result}`);
      await this.deps.store.finishAlert(decision.key, result).catch((e) => this.deps.log.error({ err: e }, 'disaster-recovery alert: result not recorded'));
      if (this.deps.notificationsEnabled) {
        this.deps.notifier.notify({ event: 'alert_action', summary: `${reason}: ${decision.action} ${result}`, alert: decision, result });
      }
    })();
    const tracked = run.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
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
