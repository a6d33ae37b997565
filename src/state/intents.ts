import { ConflictError } from '../errors.js';
import type { IntentOutcome, StateStore } from './store.js';

/**
 * Waits for the leader to finish an intent and returns its outcome. Polls: an
 * intent takes the leader at least one tick, and a submitter waits for one at a time.
 */
export async function awaitIntent(store: StateStore, id: string, timeoutMs: number, everyMs = 100): Promise<IntentOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const intent = await store.intent(id);
    if (!intent) throw new ConflictError(`intent ${id} is unknown (expired, or recorded in another cluster state)`);
    if (intent.outcome) return intent.outcome;
    if (Date.now() >= deadline) {
      const where = intent.state === 'claimed' ? `claimed by ${intent.claimedBy} and not finished` : 'not claimed by any leader';
      throw new ConflictError(`intent ${id} (${intent.kind}) still ${where} after ${timeoutMs} ms; is a leader running?`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(everyMs, Math.max(0, deadline - Date.now()))));
  }
}
