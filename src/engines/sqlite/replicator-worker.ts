// Runs in a worker thread, one per SQLite primary being shipped: every call into
// better-sqlite3 and every read of the WAL is synchronous, and a secondary locked
// by a reader must not stall the sidecar's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { WalShipper, type ShipRequest, type ShipperOptions } from './wal-shipper.js';

export type ReplicatorRequest =
  | { id: number; op: 'begin' }
  | { id: number; op: 'ship'; request: ShipRequest }
  | { id: number; op: 'forget'; target: string }
  | { id: number; op: 'close' };

export type ReplicatorMessage =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code?: string }
  | { guard: number; target: string };

export type GuardAnswer = { guard: number; refused: string | undefined };

const port = parentPort!;
const guards = new Map<number, (refused: string | undefined) => void>();
let nextGuard = 1;

const shipper = new WalShipper(workerData as ShipperOptions, (target) => {
  const id = nextGuard++;
  return new Promise((resolve) => {
    guards.set(id, resolve);
    port.postMessage({ guard: id, target } satisfies ReplicatorMessage);
  });
});

// One request at a time, in order: the shipper holds one position.
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ReplicatorRequest | GuardAnswer) => {
  if ('guard' in message) {
    guards.get(message.guard)?.(message.refused);
    guards.delete(message.guard);
    return;
  }
  queue = queue.then(() => handle(message));
});

async function handle(request: ReplicatorRequest): Promise<void> {
  try {
    let value: unknown;
    if (request.op === 'begin') value = shipper.begin();
    else if (request.op === 'ship') value = await shipper.ship(request.request);
    else if (request.op === 'forget') value = shipper.forget(request.target);
    else value = shipper.close();
    port.postMessage({ id: request.id, ok: true, value } satisfies ReplicatorMessage);
    if (request.op === 'close') port.close();
  } catch (error) {
    const e = error as { message?: string; code?: string };
    port.postMessage({ id: request.id, ok: false, message: e.message ?? String(error), ...(e.code ? { code: e.code } : {}) } satisfies ReplicatorMessage);
  }
}
