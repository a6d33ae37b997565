import { StateStoreMissing, type StateLocation } from './location.js';
import type { AlertRecord, ClusterState, FailoverRecord, FailoverResult, FailoverTrigger, Intent, Lease, MemberRecord, SqliteIdentityRecord, StateStore, StateWatch } from './store.js';

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

  async sqliteIdentities(): Promise<SqliteIdentityRecord[]> {
    return [];
  }

  /** A command that only looks writes nothing: the identity stays in its memory. */
  async recordSqliteIdentity(): Promise<void> {}

  async members(): Promise<MemberRecord[]> {
    return [];
  }

  async intent(): Promise<Intent | undefined> {
    return undefined;
  }

  /** Nothing ever changes in a store that does not exist. */
  watch(): StateWatch {
    return { stop: () => undefined, confirmedAt: () => undefined };
  }

  setAutoFailover = (): Promise<void> => this.refuse();
  reinstate = (): Promise<void> => this.refuse();
  acquireLease = (): Promise<Lease | undefined> => this.refuse();
  releaseLease = (): Promise<void> => this.refuse();
  commitSwitch = (): Promise<ClusterState | undefined> => this.refuse();
  appendHistory = (): Promise<number> => this.refuse();
  recordAlert = (): Promise<boolean> => this.refuse();
  finishAlert = (): Promise<void> => this.refuse();
  renewLease = (): Promise<Lease | undefined> => this.refuse();
  publishMember = (): Promise<void> => this.refuse();
  submitIntent = (): Promise<string> => this.refuse();
  claimIntent = (): Promise<Intent | undefined> => this.refuse();
  finishIntent = (): Promise<void> => this.refuse();

  async close(): Promise<void> {}

  private refuse(): Promise<never> {
    return Promise.reject(new StateStoreMissing(this.where.path, this.where.relativeTo));
  }
}
