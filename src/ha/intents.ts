/**
 * What changes the cluster is done by its leader. A process that is not the
 * leader records an intent and waits for the leader's outcome; when nobody leads
 * (no sidecar runs: a command used alone), it takes the leadership itself for the
 * duration of the action, so that a sidecar starting meanwhile waits for it.
 */
import os from 'node:os';
import { ConflictError, DrError, InputError } from '../errors.js';
import { FailoverFailed } from '../failover/procedure.js';
import { takeLeadership, type Leadership } from '../state/leadership.js';
import type { FailoverRecord, IntentOutcome, StateStore } from '../state/store.js';
import type { IntentKind } from './intent-admission.js';

/** No leader claimed the intent in time: nothing was done (a leader claiming it later refuses it). */
export class NoLeaderAnswered extends ConflictError {}

/** How a failure travels to the submitter: enough to give it back its class (exit code, HTTP status). */
interface FailureData {
  error: 'input' | 'conflict' | 'failed';
  record?: FailoverRecord;
}

export function successOutcome(message: string, data: unknown): IntentOutcome {
  return { ok: true, message, data: data ?? null };
}

export function failureOutcome(error: unknown): IntentOutcome {
  const data: FailureData = {
    error: error instanceof InputError ? 'input' : error instanceof ConflictError ? 'conflict' : 'failed',
    ...(error instanceof FailoverFailed ? { record: error.record } : {}),
  };
  return { ok: false, message: (error as Error)?.message ?? String(error), data };
}

/** The leader's outcome as the submitter sees it: its result, or the error the leader met. */
export function resultOf<T>(outcome: IntentOutcome): T {
  if (outcome.ok) return outcome.data as T;
  const data = (outcome.data ?? {}) as Partial<FailureData>;
  if (data.record) throw new FailoverFailed(outcome.message, data.record);
  if (data.error === 'input') throw new InputError(outcome.message);
  if (data.error === 'conflict') throw new ConflictError(outcome.message);
  throw new DrError(outcome.message);
}

export interface IntentWait {
  /** How long a leader has to claim it (the leader refuses one claimed later). */
  claimWaitMs: number;
  /** How long the claimed action may take. */
  finishWaitMs: number;
  everyMs?: number;
}

/** Submits an intent and waits for the leader's outcome; a clear error when no leader claims it in time. */
export async function submitAndWait(store: StateStore, kind: IntentKind, params: Record<string, unknown>, submittedBy: string, wait: IntentWait): Promise<IntentOutcome> {
  const id = await store.submitIntent({ kind, params, submittedBy });
  const started = Date.now();
  for (;;) {
    const intent = await store.intent(id);
    if (!intent) throw new ConflictError(`intent ${id} (${kind}) vanished from the cluster state before the leader finished it`);
    if (intent.outcome) return intent.outcome;
    const waited = Date.now() - started;
    if (intent.state === 'pending' && waited > wait.claimWaitMs) {
      const lease = await store.leaseHolder().catch(() => undefined);
      throw new NoLeaderAnswered(
        `no leader took the ${kind} request within ${wait.claimWaitMs / 1000} s (${lease ? `the lease is held by ${lease.holder}, which did not answer` : 'nobody holds the lease'}); nothing was done: is a sidecar running and reaching the state store?`,
      );
    }
    if (intent.state === 'claimed' && waited > wait.claimWaitMs + wait.finishWaitMs) {
      throw new ConflictError(`the ${kind} request was taken by ${intent.claimedBy} but not finished within ${(wait.claimWaitMs + wait.finishWaitMs) / 1000} s; see the history and the leader's log`);
    }
    await new Promise((resolve) => setTimeout(resolve, wait.everyMs ?? 100));
  }
}

export interface ActingDeps {
  store: StateStore;
  ttlMs: number;
  wait: IntentWait;
  /** Who this process is, in the intent's `submittedBy` and a transient lease's holder. */
  submitter: string;
  /** The running sidecar's own leadership when it leads now; undefined otherwise. */
  ownLeadership(): Leadership | undefined;
  /** A running sidecar never takes the lease outside its campaign: it submits. */
  isSidecar: boolean;
}

/**
 * Runs `act` as the leader (the sidecar's own leadership, or one taken for the
 * moment when nobody leads), or hands `kind`/`params` to the live leader as an intent.
 */
export async function actAsLeader<T>(deps: ActingDeps, kind: IntentKind, params: Record<string, unknown>, act: (leadership: Leadership) => Promise<T>): Promise<T> {
  const own = deps.ownLeadership();
  if (own?.stillLeader()) return act(own);
  if (!deps.isSidecar && !(await deps.store.leaseHolder())) {
    const transient = await takeLeadership(deps.store, `${deps.submitter}:${kind}`, deps.ttlMs);
    if (transient) {
      try {
        return await act(transient);
      } finally {
        await transient.release().catch(() => undefined);
      }
    }
    // Somebody took it between the look and the try: it leads now, hand it the request.
  }
  return resultOf<T>(await submitAndWait(deps.store, kind, params, deps.submitter, deps.wait));
}

/** A command's or library's name in intents and transient leases. */
export function processName(what: string): string {
  return `${what}@${os.hostname()}:${process.pid}`;
}
