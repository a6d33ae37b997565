import { Worker } from 'node:worker_threads';
import { downResult as down, type ProbeResult } from './engine.js';
import type { SqliteProbeReply, SqliteProbeRequest } from './sqlite-probe-worker.js';

interface Pending {
  request: SqliteProbeRequest;
  startedAt: number;
  deadline: number;
  timer: NodeJS.Timeout;
  resolve: (result: ProbeResult) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  retired: boolean;
}

/**
 * A few worker threads that run SQLite probes off the event loop. A probe that
 * outlives its timeout is answered "down" at once; its worker is retired
 * (it may be stuck in a syscall) and the other probes it held move to a fresh one.
 */
export class SqliteProbePool {
  private slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly size: number = 2) {}

  probe(file: string, timeoutMs: number): Promise<ProbeResult> {
    if (this.closed) return Promise.resolve(down(performance.now(), 'sidecar is shutting down'));
    return new Promise((resolve) => {
      const startedAt = performance.now();
      const request: SqliteProbeRequest = { id: this.nextId++, file, timeoutMs };
      this.dispatch({ request, startedAt, deadline: startedAt + timeoutMs, resolve, timer: undefined as unknown as NodeJS.Timeout });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    for (const slot of slots) this.failAll(slot, 'sidecar is shutting down');
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  private dispatch(pending: Pending): void {
    const slot = this.pickSlot();
    const remaining = Math.max(1, pending.deadline - performance.now());
    pending.timer = setTimeout(() => this.onTimeout(slot, pending), remaining);
    slot.pending.set(pending.request.id, pending);
    slot.worker.postMessage({ ...pending.request, timeoutMs: Math.ceil(remaining) });
  }

  private pickSlot(): Slot {
    const live = this.slots.filter((s) => !s.retired);
    if (live.length < this.size) return this.spawn();
    return live.reduce((best, s) => (s.pending.size < best.pending.size ? s : best));
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./sqlite-probe-worker.js', import.meta.url));
    worker.unref();
    const slot: Slot = { worker, pending: new Map(), retired: false };
    worker.on('message', (reply: SqliteProbeReply) => this.onReply(slot, reply));
    worker.on('error', (error) => this.retire(slot, `probe worker failed: ${error.message}`));
    worker.on('exit', () => this.retire(slot, 'probe worker exited'));
    this.slots.push(slot);
    return slot;
  }

  private onReply(slot: Slot, reply: SqliteProbeReply): void {
    const pending = slot.pending.get(reply.id);
    if (!pending) return;
    slot.pending.delete(reply.id);
    clearTimeout(pending.timer);
    const result: ProbeResult = { up: reply.up, checkedAt: Date.now(), responseTimeSeconds: reply.seconds };
    if (reply.sizeBytes !== undefined) result.sizeBytes = reply.sizeBytes;
    if (reply.error !== undefined) result.error = reply.error;
    pending.resolve(result);
  }

  private onTimeout(slot: Slot, pending: Pending): void {
    slot.pending.delete(pending.request.id);
    pending.resolve(down(pending.startedAt, `probe timed out after ${pending.request.timeoutMs / 1000} s: ${pending.request.file}`));
    // The worker is stuck on this file: hand its other probes to a fresh worker.
    slot.retired = true;
    this.slots = this.slots.filter((s) => s !== slot);
    const others = [...slot.pending.values()];
    slot.pending.clear();
    for (const other of others) {
      clearTimeout(other.timer);
      this.dispatch(other);
    }
    void slot.worker.terminate();
  }

  private retire(slot: Slot, why: string): void {
    if (!this.slots.includes(slot)) return;
    slot.retired = true;
    this.slots = this.slots.filter((s) => s !== slot);
    this.failAll(slot, why);
  }

  private failAll(slot: Slot, why: string): void {
    for (const pending of slot.pending.values()) {
      clearTimeout(pending.timer);
      pending.resolve(down(pending.startedAt, why));
    }
    slot.pending.clear();
  }
}
