import { maskUrlIn, webhookTarget, type WebhookTarget } from '../config/secrets.js';
import type { Logger } from '../log.js';

/** An event the sidecar tells the outside world about (failover, alert action, ...). */
export interface NotificationEvent {
  event: string;
  summary: string;
  [field: string]: unknown;
}

export interface Notifier {
  /** Never throws and never blocks the caller: delivery happens in the background. */
  notify(event: NotificationEvent): void;
  /** Waits for deliveries under way (for shutdown and tests), at most `timeoutMs`. */
  drain(timeoutMs?: number): Promise<void>;
}

export interface WebhookOptions {
  urls: readonly string[];
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

/**
 * POSTs each event as JSON to every configured URL, with a timeout and retries.
 * A URL's user and password go in an Authorization header (fetch refuses a URL
 * that holds them); logs name a webhook by its masked URL only.
 */
export class WebhookNotifier implements Notifier {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly targets: Array<WebhookTarget & { url: string }>;

  constructor(
    private readonly options: WebhookOptions,
    private readonly log: Logger,
  ) {
    this.targets = options.urls.map((url) => ({ ...webhookTarget(url), url }));
  }

  notify(event: NotificationEvent): void {
    const body = JSON.stringify({ source: 'dr-sidecar', sent_at: new Date().toISOString(), ...event });
    for (const target of this.targets) {
      const delivery = this.deliver(target, body, event.event).finally(() => this.inFlight.delete(delivery));
      this.inFlight.add(delivery);
    }
  }

  async drain(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
    clearTimeout(timer);
  }

  private async deliver(target: WebhookTarget & { url: string }, body: string, kind: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (target.authorization) headers.authorization = target.authorization;
    const webhook = target.shown;
    let lastError = '';
    for (let attempt = 1; attempt <= this.options.attempts; attempt++) {
      try {
        const res = await fetch(target.href, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.options.timeoutMs) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.log.debug({ webhook, event: kind, attempt }, `disaster-recovery notification delivered: ${kind}`);
          return;
        }
        lastError = `HTTP ${res.status}`;
      } catch (error) {
        lastError = describeFetchError(error, target.url, target.href);
      }
      if (attempt < this.options.attempts) await new Promise((r) => setTimeout(r, this.options.backoffMs * 2 ** (attempt - 1)));
    }
    this.log.error({ webhook, event: kind, error: lastError }, `disaster-recovery notification failed after ${this.options.attempts} attempts: ${kind}`);
  }
}

/** fetch's message and its cause's ("fetch failed: connect ECONNREFUSED …"), any URL in them masked. */
function describeFetchError(error: unknown, url: string, href: string): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.message ?? e.cause?.code;
  const text = cause && !e.message.includes(cause) ? `${e.message}: ${cause}` : e.message;
  return maskUrlIn(maskUrlIn(text, url), href);
}

/** `notification_enabled: false`, or no URL configured. */
export class SilentNotifier implements Notifier {
  notify(): void {}
  async drain(): Promise<void> {}
}
