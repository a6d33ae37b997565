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

/** POSTs each event as JSON to every configured URL, with a timeout and retries. */
export class WebhookNotifier implements Notifier {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly options: WebhookOptions,
    private readonly log: Logger,
  ) {}

  notify(event: NotificationEvent): void {
    const body = JSON.stringify({ source: 'dr-sidecar', sent_at: new Date().toISOString(), ...event });
    for (const url of this.options.urls) {
      const delivery = this.deliver(url, body, event.event).finally(() => this.inFlight.delete(delivery));
      this.inFlight.add(delivery);
    }
  }

  async drain(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
    clearTimeout(timer);
  }

  private async deliver(url: string, body: string, kind: string): Promise<void> {
    let lastError = '';
    for (let attempt = 1; attempt <= this.options.attempts; attempt++) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        if (res.ok) {
          this.log.debug({ url, event: kind, attempt }, `disaster-recovery notification delivered: ${kind}`);
          return;
        }
        lastError = `HTTP ${res.status}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (attempt < this.options.attempts) await new Promise((r) => setTimeout(r, this.options.backoffMs * 2 ** (attempt - 1)));
    }
    this.log.error({ url, event: kind, error: lastError }, `disaster-recovery notification failed after ${this.options.attempts} attempts: ${kind}`);
  }
}

/** `notification_enabled: false`, or no URL configured. */
export class SilentNotifier implements Notifier {
  notify(): void {}
  async drain(): Promise<void> {}
}
