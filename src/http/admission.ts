import type { RequestHandler, Response } from 'express';

export interface AdmissionOptions {
  /** Requests worked on at the same time; the others wait their turn. */
  concurrency: number;
  /** Requests that may wait; beyond that, 503 with Retry-After (Alertmanager retries). */
  maxWaiting: number;
  /** Seconds a refused sender is asked to wait before it retries. */
  retryAfterSeconds: number;
}

interface Waiting {
  res: Response;
  next: () => void;
}

/**
 * Lets a bounded number of requests of a route be worked on at once. A storm of
 * deliveries then only ever holds the event loop for that many at a time, so a
 * /metrics scrape or a health check arriving in the middle of it is answered
 * within a few milliseconds instead of waiting behind all of them. The others
 * wait their turn, in order; beyond `maxWaiting` the request is refused with
 * 503 and Retry-After rather than queued without bound.
 */
export function admission(options: AdmissionOptions): RequestHandler & { readonly inFlight: number; readonly waiting: number } {
  let inFlight = 0;
  const queue: Waiting[] = [];

  const admit = (res: Response, next: () => void) => {
    inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inFlight--;
      admitNext();
    };
    // 'close' comes after 'finish' and also when the sender hangs up early: either way the slot is free.
    res.once('close', release);
    next();
  };

  const admitNext = () => {
    while (inFlight < options.concurrency && queue.length > 0) {
      const waiting = queue.shift()!;
      // A sender that gave up while waiting needs no answer.
      if (waiting.res.destroyed || waiting.res.writableEnded) continue;
      admit(waiting.res, waiting.next);
    }
  };

  const handler: RequestHandler = (_req, res, next) => {
    if (inFlight < options.concurrency) {
      admit(res, next);
      return;
    }
    if (queue.length >= options.maxWaiting) {
      res.set('Retry-After', String(options.retryAfterSeconds));
      res.status(503).json({ error: `too many deliveries at once (${inFlight} under way, ${queue.length} waiting): retry later` });
      return;
    }
    queue.push({ res, next });
  };

  return Object.defineProperties(handler, {
    inFlight: { get: () => inFlight },
    waiting: { get: () => queue.length },
  }) as RequestHandler & { readonly inFlight: number; readonly waiting: number };
}
