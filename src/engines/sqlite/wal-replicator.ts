import { Worker } from 'node:worker_threads';
import type { GuardAnswer, ReplicatorMessage, ReplicatorRequest } from './replicator-worker.js';
import type { BeginOutcome, ShipOutcome, ShipperOptions, ShipRequest } from './wal-shipper.js';

type Call = { op: 'begin' } | { op: 'ship'; request: ShipRequest } | { op: 'forget'; target: string } | { op: 'close' };

/**
 * The WAL shipper of one primary, in a worker thread of its own (replicator-worker.ts):
 * the same calls, as promises. The guard runs here, on the event loop, while
 * the worker holds the secondary's write lock.
 */
export class WalReplicator {
  private readonly worker: Worker;
  private readonly calls = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private gone: Error | undefined;

  constructor(
    readonly options: ShipperOptions,
    guard: (target: string) => Promise<string | undefined>,
  ) {
    this.worker = new Worker(new URL('./replicator-worker.js', import.meta.url), { workerData: options });
    this.worker.unref();
    this.worker.on('message', (message: ReplicatorMessage) => {
      if ('guard' in message) {
        guard(message.target).then(
          (refused) => this.worker.postMessage({ guard: message.guard, refused } satisfies GuardAnswer),
          (error: Error) => this.worker.postMessage({ guard: message.guard, refused: `the guard failed: ${error.message}` } satisfies GuardAnswer),
        );
        return;
      }
      const call = this.calls.get(message.id);
      this.calls.delete(message.id);
      if (!call) return;
      if (message.ok) call.resolve(message.value);
      else call.reject(Object.assign(new Error(message.message), message.code ? { code: message.code } : {}));
    });
    const fail = (error: Error) => {
      this.gone = error;
      for (const call of this.calls.values()) call.reject(error);
      this.calls.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the WAL shipper of ${options.primary} exited (code ${code})`)));
  }

  begin(): Promise<BeginOutcome> {
    return this.call({ op: 'begin' }) as Promise<BeginOutcome>;
  }

  ship(request: ShipRequest): Promise<ShipOutcome> {
    return this.call({ op: 'ship', request }) as Promise<ShipOutcome>;
  }

  forget(target: string): Promise<void> {
    return this.call({ op: 'forget', target }) as Promise<void>;
  }

  /** Lets go of the primary (its snapshot, its files) and ends the thread. */
  async close(): Promise<void> {
    if (this.gone) return;
    try {
      await this.call({ op: 'close' });
    } catch {
      // Already gone.
    }
    await this.worker.terminate().catch(() => undefined);
  }

  private call(call: Call): Promise<unknown> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...call } as ReplicatorRequest);
    });
  }
}
