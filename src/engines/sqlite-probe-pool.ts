import { Worker } from 'node:worker_threads';
import { downResult as down, type ProbeResult } from './engine.js';
import type { SqliteObservation } from './sqlite-identity.js';
import type { SqliteProbeReply, SqliteProbeRequest } from './sqlite-probe-worker.js';

/** A probe's result, with the file's identity as the worker saw it (when it could read the file). */
export interface SqliteProbeResult extends ProbeResult {
  observed?: SqliteObservation;
}

interface Pending {
  request: SqliteProbeRequest;
  startedAt: number;
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (result: SqliteProbeResult) => void;
}

interface Slot {
  worker: Worker;
  /** Probes whose caller still waits for this worker's answer. */
  pending: Map<number, Pending>;
  /** Requests sent and not answered yet, including ones whose caller gave up. */
  unanswered: Map<number, string>;
  retired: boolean;
}

/**
 * A few worker threads that run SQLite probes off the event loop. A probe that
 * outlives its timeout is answered "down" at once; its worker is retired and
 * the probes queued behind it move to a fresh worker.
 *
 * A retired worker is terminated only once it is idle: terminating a thread
 * inside a better-sqlite3 call aborts the whole process. While a file's probe
 * is stuck, new probes of that file answer "down" without queuing more threads.
 */
export class SqliteProbePool {
  private slots: Slot[] = [];
  private readonly retired = new Set<Slot>();
  private readonly stuckFiles = new Map<string, number>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly size: number = 2) {}

  probe(file: string, timeoutMs: number): Promise<SqliteProbeResult> {
    const startedAt = performance.now();
    if (this.closed) return Promise.resolve(down(startedAt, 'sidecar is shutting down'));
    if (this.stuckFiles.has(file)) {
      return Promise.resolve(down(startedAt, `an earlier probe of ${file} has not returned yet (hung storage?)`));
    }
    return new Promise((resolve) => {
      const request: SqliteProbeRequest = { id: this.nextId++, file, timeoutMs };
      this.dispatch({ request, startedAt, deadline: startedAt + timeoutMs, resolve, timer: undefined });
    });
  }

  /** Waits (bounded) for workers that are inside a call, then ends every worker. */
  async close(graceMs = 2_000): Promise<void> {
    this.closed = true;
    const slots = [...this.slots, ...this.retired];
    this.slots = [];
    for (const slot of slots) {
      for (const pending of slot.pending.values()) {
        clearTimeout(pending.timer);
        pending.resolve(down(pending.startedAt, 'sidecar is shutting down'));
      }
      slot.pending.clear();
    }
    const deadline = Date.now() + graceMs;
    while (slots.some((s) => s.unanswered.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(slots.filter((s) => s.unanswered.size === 0).map((s) => s.worker.terminate()));
  }

  private dispatch(pending: Pending): void {
    const slot = this.pickSlot();
    const remaining = Math.max(1, pending.deadline - performance.now());
    pending.timer = setTimeout(() => this.onTimeout(slot, pending), remaining);
    slot.pending.set(pending.request.id, pending);
    slot.unanswered.set(pending.request.id, pending.request.file);
    // The worker's own busy timeout ends its wait on a lock by the same deadline.
    slot.worker.postMessage({ ...pending.request, timeoutMs: Math.ceil(remaining) });
  }

  private pickSlot(): Slot {
    if (this.slots.length < this.size) return this.spawn();
    return this.slots.reduce((best, s) => (s.unanswered.size < best.unanswered.size ? s : best));
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./sqlite-probe-worker.js', import.meta.url));
    worker.unref();
    const slot: Slot = { worker, pending: new Map(), unanswered: new Map(), retired: false };
    worker.on('message', (reply: SqliteProbeReply) => this.onReply(slot, reply));
    worker.on('error', (error) => this.onWorkerGone(slot, `probe worker failed: ${error.message}`));
    worker.on('exit', () => this.onWorkerGone(slot, 'probe worker exited'));
    this.slots.push(slot);
    return slot;
  }

  private onReply(slot: Slot, reply: SqliteProbeReply): void {
    const file = slot.unanswered.get(reply.id);
    slot.unanswered.delete(reply.id);
    if (file !== undefined && this.stuckFiles.get(file) === reply.id) this.stuckFiles.delete(file);
    if (slot.retired && slot.unanswered.size === 0) void slot.worker.terminate();
    const pending = slot.pending.get(reply.id);
    if (!pending) return;
    slot.pending.delete(reply.id);
    clearTimeout(pending.timer);
    const result: SqliteProbeResult = { up: reply.up, checkedAt: Date.now(), responseTimeSeconds: reply.seconds };
    if (reply.sizeBytes !== undefined) result.sizeBytes = reply.sizeBytes;
    if (reply.error !== undefined) result.error = reply.error;
    if (reply.observed !== undefined) result.observed = reply.observed;
    pending.resolve(result);
  }

  private onTimeout(slot: Slot, pending: Pending): void {
    slot.pending.delete(pending.request.id);
    this.stuckFiles.set(pending.request.file, pending.request.id);
    pending.resolve(down(pending.startedAt, `probe timed out after ${pending.request.timeoutMs / 1000} s: ${pending.request.file}`));
    this.retire(slot);
    const queued = [...slot.pending.values()];
    slot.pending.clear();
    for (const other of queued) {
      clearTimeout(other.timer);
      this.dispatch(other);
    }
  }

  private retire(slot: Slot): void {
    slot.retired = true;
    this.slots = this.slots.filter((s) => s !== slot);
    this.retired.add(slot);
  }

  private onWorkerGone(slot: Slot, why: string): void {
    for (const file of slot.unanswered.values()) this.stuckFiles.delete(file);
    slot.unanswered.clear();
    this.slots = this.slots.filter((s) => s !== slot);
    this.retired.delete(slot);
    for (const pending of slot.pending.values()) {
      clearTimeout(pending.timer);
      pending.resolve(down(pending.startedAt, why));
    }
    slot.pending.clear();
  }
}
