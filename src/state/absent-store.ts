import { StateStoreMissing, type StateLocation } from './location.js';
import type { AlertRecord, ClusterState, FailoverRecord, FailoverResult, FailoverTrigger, Lease, StateStore } from './store.js';

/**
 * What commands that only look (`test`, `verify`) get when no store exists:
 * nothing recorded yet, and every change refused as a missing store, so that
 * nothing is ever written to a store that no sidecar uses.
 */
export class AbsentStateStore implements StateStore {
  readonly location: string;

  constructor(private readonly where: StateLocation) {
    this.location = `${where.path} (does not exist)`;
  }

  async read(): Promise<ClusterState> {
    return { primary: undefined, epoch: 0, autoFailover: undefined, demoted: [], lastAutoFailoverAt: undefined };
  }

  async leaseHolder(): Promise<Lease | undefined> {
    return undefined;
  }

  async history(): Promise<FailoverRecord[]> {
    return [];
  }

  async historyCounts(): Promise<Array<{ trigger: FailoverTrigger; result: FailoverResult; count: number }>> {
    return [];
  }

  async alerts(): Promise<AlertRecord[]> {
    return [];
  }

  setAutoFailover = (): Promise<void> => this.refuse();
  reinstate = (): Promise<void> => this.refuse();
  acquireLease = (): Promise<Lease | undefined> => this.refuse();
  releaseLease = (): Promise<void> => this.refuse();
  commitSwitch = (): Promise<ClusterState | undefined> => this.refuse();
  appendHistory = (): Promise<number> => this.refuse();
  recordAlert = (): Promise<boolean> => this.refuse();
  finishAlert = (): Promise<void> => this.refuse();

  async close(): Promise<void> {}

  private refuse(): Promise<never> {
    return Promise.reject(new StateStoreMissing(this.where.path, this.where.relativeTo));
  }
}
