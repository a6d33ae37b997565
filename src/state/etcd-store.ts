/**
 * The state store in an etcd cluster, shared by sidecars on several hosts.
 * Every key lives under one prefix (one cluster of databases per prefix):
 *
 *   <prefix>primary                 name of the current primary
 *   <prefix>epoch                   switch counter (absent: 0)
 *   <prefix>auto_failover           "1" | "0" (absent: the config's value)
 *   <prefix>last_auto_failover_at   epoch ms
 *   <prefix>last_switch             who wrote the last switch (recognises a retried commit)
 *   <prefix>demoted/<name>          epoch ms since it was demoted
 *   <prefix>leader                  {"holder": …} with an etcd lease of the TTL
 *   <prefix>history_seq             last history id (compare-and-set counter)
 *   <prefix>history/<12-digit id>   one failover record
 *   <prefix>alerts/<key>            one alert record, with a lease of ~30 days
 *   <prefix>members/<name>          one sidecar's view, with a lease of its own TTL
 *   <prefix>intents/<uuid>          a change for the leader to carry out, with a lease of ~1 day
 *
 * Changes that must not race are single transactions: the switch compares the
 * epoch's value, the lease and alert records are created only if absent. A
 * request whose answer was lost (a member died mid-call) may be retried on
 * another member and find its own write already there: every such write carries
 * a token of this store instance, so the retry recognises it instead of
 * reporting a conflict with itself.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { EtcdClient, EtcdRequestError, type Compare, type EtcdKv, type TxnOp, type WatchEvent } from './etcd-client.js';
import type {
  AlertRecord,
  ClusterState,
  CommitSwitchOptions,
  FailoverRecord,
  FailoverResult,
  FailoverTrigger,
  Intent,
  IntentOutcome,
  IntentRequest,
  Lease,
  MemberRecord,
  MemberView,
  MembershipChange,
  SqliteIdentityRecord,
  StateStore,
  StateWatch,
} from './store.js';

export interface EtcdStoreOptions {
  endpoints: string[];
  /** Keys of one cluster start with this; ends with "/". */
  prefix: string;
  /** Bound of one etcd call across every endpoint tried. */
  timeoutMs?: number;
  /** How often a watch re-reads the state to catch a stream that went silent (a frozen member). */
  watchCheckMs?: number;
}

/** Alert records are kept this long at least: long enough to catch any re-delivery. */
const ALERT_RETENTION_S = 30 * 86_400;
/** One alert lease serves the records of a day, so a record lives 30 to 31 days. */
const ALERT_LEASE_ROTATION_MS = 86_400_000;
const HISTORY_ID_DIGITS = 12;
/** Intents are kept a day: long enough for any submitter to read its outcome. */
const INTENT_RETENTION_S = 86_400;
const INTENT_LEASE_ROTATION_MS = 3_600_000;
/** Compare-and-set attempts before giving up on a key that keeps changing under us. */
const MAX_CAS_ATTEMPTS = 100;

type Keys = ReturnType<typeof keysOf>;
const keysOf = (p: string) => ({
  primary: `${p}primary`,
  epoch: `${p}epoch`,
  autoFailover: `${p}auto_failover`,
  lastAutoFailoverAt: `${p}last_auto_failover_at`,
  lastSwitch: `${p}last_switch`,
  demoted: `${p}demoted/`,
  leader: `${p}leader`,
  historySeq: `${p}history_seq`,
  history: `${p}history/`,
  alerts: `${p}alerts/`,
  members: `${p}members/`,
  intents: `${p}intents/`,
  identities: `${p}identities/`,
});

/** The keys of the cluster state (what a watch reports), as opposed to the journal, members and intents. */
const isStateKey = (k: Keys, key: string): boolean =>
  key === k.primary || key === k.epoch || key === k.autoFailover || key === k.lastAutoFailoverAt || key.startsWith(k.demoted);

/** A stored value with the token of the store instance that wrote it. */
interface Envelope<T> {
  w: string;
  r: T;
}

const memberRecordOf = (name: string, value: string): MemberRecord => ({ name, ...(JSON.parse(value) as { view: MemberView; publishedAt: number }) });

const seal = <T>(w: string, r: T): string => JSON.stringify({ w, r } satisfies Envelope<T>);
const open = <T>(kv: EtcdKv): Envelope<T> => JSON.parse(kv.value) as Envelope<T>;

export class EtcdStateStore implements StateStore {
  readonly client: EtcdClient;
  readonly keys: Keys;
  private readonly writer = randomUUID();
  private tokens = 0;
  private readonly sharedLeases = new Map<string, { id: Promise<string>; grantedAt: number }>();
  private readonly memberLeases = new Map<string, string>();
  private readonly watches = new Set<StateWatch>();
  private readonly intentListeners = new Set<() => void>();
  private readonly membershipListeners = new Set<(change: MembershipChange) => void>();
  private counted: { lastId: number; counts: Map<string, number> } = { lastId: 0, counts: new Map() };

  constructor(readonly options: EtcdStoreOptions) {
    this.client = new EtcdClient({ endpoints: options.endpoints, timeoutMs: options.timeoutMs ?? 5000 });
    this.keys = keysOf(options.prefix);
  }

  private token(): string {
    return `${this.writer}:${++this.tokens}`;
  }

  /** The range ops that read the whole cluster state, in the order stateFrom expects. */
  private stateReads(): TxnOp[] {
    const k = this.keys;
    return [
      { range: { key: k.primary } },
      { range: { key: k.epoch } },
      { range: { key: k.autoFailover } },
      { range: { key: k.lastAutoFailoverAt } },
      { range: { key: k.demoted, prefix: true } },
    ];
  }

  private stateFrom(ranges: EtcdKv[][]): ClusterState {
    const [primary, epoch, auto, lastAuto, demoted] = ranges.slice(-5) as [EtcdKv[], EtcdKv[], EtcdKv[], EtcdKv[], EtcdKv[]];
    return {
      primary: primary[0]?.value,
      epoch: Number(epoch[0]?.value ?? 0),
      autoFailover: auto[0] ? auto[0].value === '1' : undefined,
      demoted: demoted
        .map((kv) => ({ name: kv.key.slice(this.keys.demoted.length), since: Number(kv.value) }))
        .sort((a, b) => a.since - b.since || a.name.localeCompare(b.name))
        .map((d) => d.name),
      lastAutoFailoverAt: lastAuto[0] ? Number(lastAuto[0].value) : undefined,
    };
  }

  async read(): Promise<ClusterState> {
    // One transaction: every key read at one revision.
    const r = await this.client.txn([], this.stateReads());
    return this.stateFrom(r.ranges);
  }

  async setAutoFailover(enabled: boolean): Promise<void> {
    await this.client.put(this.keys.autoFailover, enabled ? '1' : '0');
  }

  async reinstate(name: string): Promise<void> {
    await this.client.delete(this.keys.demoted + name);
  }

  async acquireLease(holder: string, ttlMs: number): Promise<Lease | undefined> {
    const current = await this.client.get(this.keys.leader);
    if (current) {
      if (holderOf(current) !== holder) return undefined;
      // Ours (this instance or an earlier one of the same holder): renew the lease the key is attached to.
      const ttl = current.lease ? await this.client.keepAlive(current.lease) : 0;
      if (ttl > 0) return { holder, expiresAt: Date.now() + ttl * 1000 };
      // Expired between the read and the renewal: its key went with it, take it afresh.
    }
    const lease = await this.client.grant(ttlMs / 1000);
    const r = await this.client.txn(
      [{ key: this.keys.leader, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      [{ put: { key: this.keys.leader, value: JSON.stringify({ holder }), lease: lease.id } }],
      [{ range: { key: this.keys.leader } }],
    );
    const found = r.ranges[0]?.[0];
    if (r.succeeded || found?.lease === lease.id) return { holder, expiresAt: Date.now() + lease.ttl * 1000 };
    await this.client.revoke(lease.id);
    return undefined;
  }

  async leaseHolder(): Promise<Lease | undefined> {
    const current = await this.client.get(this.keys.leader);
    if (!current?.lease) return undefined;
    const ttl = await this.client.timeToLive(current.lease);
    return ttl === undefined ? undefined : { holder: holderOf(current), expiresAt: Date.now() + ttl * 1000 };
  }

  async releaseLease(holder: string): Promise<void> {
    const current = await this.client.get(this.keys.leader);
    if (!current || holderOf(current) !== holder) return;
    // Revoking deletes the key with it; a newer holder has a lease of its own, untouched.
    if (current.lease) await this.client.revoke(current.lease);
    else await this.client.txn([{ key: this.keys.leader, target: 'MOD', result: 'EQUAL', modRevision: current.modRevision }], [{ delete: { key: this.keys.leader } }]);
  }

  async commitSwitch(
    expectedEpoch: number,
    from: string | undefined,
    to: string,
    trigger: FailoverTrigger,
    at: number,
    options: CommitSwitchOptions = {},
  ): Promise<ClusterState | undefined> {
    const k = this.keys;
    const token = this.token();
    // Epoch 0 is the key's absence: it is never written as "0".
    const compare: Compare =
      expectedEpoch === 0 ? { key: k.epoch, target: 'CREATE', result: 'EQUAL', createRevision: 0 } : { key: k.epoch, target: 'VALUE', result: 'EQUAL', value: String(expectedEpoch) };
    const writes: TxnOp[] = [
      { put: { key: k.primary, value: to } },
      { put: { key: k.epoch, value: String(expectedEpoch + 1) } },
      { put: { key: k.lastSwitch, value: token } },
      { delete: { key: k.demoted + to } },
    ];
    if (trigger === 'auto' || trigger === 'alert') writes.push({ put: { key: k.lastAutoFailoverAt, value: String(at) } });
    if (from && from !== to && options.demoteFrom !== false) writes.push({ put: { key: k.demoted + from, value: String(at) } });
    const r = await this.client.txn([compare], [...writes, ...this.stateReads()], [{ range: { key: k.lastSwitch } }]);
    if (r.succeeded) return this.stateFrom(r.ranges);
    // Our own commit, applied by a request whose answer was lost and then retried.
    if (r.ranges[0]?.[0]?.value === token) return this.read();
    return undefined;
  }

  async appendHistory(record: FailoverRecord): Promise<number> {
    const { id: _id, ...rest } = record;
    const k = this.keys;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const seq = await this.client.get(k.historySeq);
      const id = (seq ? Number(seq.value) : 0) + 1;
      const key = historyKey(k, id);
      const token = this.token();
      const r = await this.client.txn(
        [seq ? { key: k.historySeq, target: 'MOD', result: 'EQUAL', modRevision: seq.modRevision } : { key: k.historySeq, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
        [{ put: { key: k.historySeq, value: String(id) } }, { put: { key, value: seal(token, rest) } }],
        [{ range: { key } }],
      );
      const found = r.ranges[0]?.[0];
      if (r.succeeded || (found && open(found).w === token)) return id;
      // Another process appended first: try the next id.
    }
    throw new Error(`etcd: could not append to ${k.history} after ${MAX_CAS_ATTEMPTS} attempts (the counter kept changing)`);
  }

  async history(limit: number): Promise<FailoverRecord[]> {
    const { kvs } = await this.client.range(this.keys.history, { prefix: true, limit, sort: { target: 'KEY', order: 'DESCEND' } });
    return kvs.map((kv) => ({ id: Number(kv.key.slice(this.keys.history.length)), ...open<Omit<FailoverRecord, 'id'>>(kv).r }));
  }

  /** Counted incrementally: only the records appended since the last call are read (this runs on every scrape). */
  async historyCounts(): Promise<Array<{ trigger: FailoverTrigger; result: FailoverResult; count: number }>> {
    const k = this.keys;
    const seq = await this.client.get(k.historySeq);
    const lastId = seq ? Number(seq.value) : 0;
    if (lastId < this.counted.lastId) this.counted = { lastId: 0, counts: new Map() };
    if (lastId > this.counted.lastId) {
      const { kvs } = await this.client.range(historyKey(k, this.counted.lastId + 1), { untilEndOf: k.history });
      const counts = new Map(this.counted.counts);
      let seen = this.counted.lastId;
      for (const kv of kvs) {
        const id = Number(kv.key.slice(k.history.length));
        if (id > lastId) continue;
        const { trigger, result, drill } = open<FailoverRecord>(kv).r;
        seen = Math.max(seen, id);
        if (drill) continue;
        const group = `${trigger}|${result}`;
        counts.set(group, (counts.get(group) ?? 0) + 1);
      }
      this.counted = { lastId: seen, counts };
    }
    return [...this.counted.counts].map(([group, count]) => {
      const [trigger, result] = group.split('|') as [FailoverTrigger, FailoverResult];
      return { trigger, result, count };
    });
  }

  async recordAlert(record: AlertRecord): Promise<boolean> {
    const key = this.keys.alerts + record.key;
    const token = this.token();
    const lease = await this.alertLeaseId();
    const r = await this.client.txn(
      [{ key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      [{ put: { key, value: seal(token, record), lease } }],
      [{ range: { key } }],
    );
    const found = r.ranges[0]?.[0];
    return r.succeeded || (found !== undefined && open(found).w === token);
  }

  private alertLeaseId(): Promise<string> {
    return this.sharedLease('alerts', ALERT_RETENTION_S + ALERT_LEASE_ROTATION_MS / 1000, ALERT_LEASE_ROTATION_MS);
  }

  /**
   * A lease records of one kind expire with: one per `rotationMs` and store instance,
   * so etcd holds a handful of leases, not one per record.
   */
  private sharedLease(kind: string, ttlS: number, rotationMs: number): Promise<string> {
    const now = Date.now();
    const current = this.sharedLeases.get(kind);
    if (current && now - current.grantedAt <= rotationMs) return current.id;
    const id = this.client.grant(ttlS).then((l) => l.id);
    this.sharedLeases.set(kind, { id, grantedAt: now });
    // A failed grant is not remembered: the next record asks again.
    id.catch(() => {
      if (this.sharedLeases.get(kind)?.id === id) this.sharedLeases.delete(kind);
    });
    return id;
  }

  async finishAlert(key: string, result: string): Promise<void> {
    const full = this.keys.alerts + key;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const kv = await this.client.get(full);
      if (!kv) return;
      const { w, r: record } = open<AlertRecord>(kv);
      const r = await this.client.txn(
        [{ key: full, target: 'MOD', result: 'EQUAL', modRevision: kv.modRevision }],
        // ignoreLease: the record keeps the lease it expires with.
        [{ put: { key: full, value: seal(w, { ...record, result }), ignoreLease: true } }],
      );
      if (r.succeeded) return;
    }
    throw new Error(`etcd: could not record the result of alert ${key} after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async alerts(limit: number): Promise<AlertRecord[]> {
    const { kvs } = await this.client.range(this.keys.alerts, { prefix: true, limit, sort: { target: 'CREATE', order: 'DESCEND' } });
    return kvs.map((kv) => open<AlertRecord>(kv).r);
  }

  async renewLease(holder: string, ttlMs: number): Promise<Lease | undefined> {
    void ttlMs; // etcd renews a lease for the TTL it was granted with
    const current = await this.client.get(this.keys.leader);
    if (!current?.lease || holderOf(current) !== holder) return undefined;
    const ttl = await this.client.keepAlive(current.lease);
    return ttl > 0 ? { holder, expiresAt: Date.now() + ttl * 1000 } : undefined;
  }

  /**
   * A read, then etcd's watch of the prefix from the next revision; a change of a
   * state key triggers a read (changes are rare; a read gives the state whole).
   * Every `watchCheckMs` a read also checks the stream: a stream on a frozen member
   * says nothing, so a state it missed restarts it on another member. Every read is
   * linearizable (it went through the etcd leader and a quorum), so each one that
   * answers confirms the state (`confirmedAt`); reads answered out of order never
   * deliver an older revision over a newer one.
   */
  watch(onChange: (state: ClusterState) => void, onError?: (error: Error) => void): StateWatch {
    const stop = new AbortController();
    let stream = new AbortController();
    let last: string | undefined;
    let lastRevision = 0;
    let confirmedAt: number | undefined;
    let failing = false;
    const readState = async (): Promise<{ state: ClusterState; revision: number; sentAt: number }> => {
      const sentAt = performance.now();
      const r = await this.client.txn([], this.stateReads());
      return { state: this.stateFrom(r.ranges), revision: r.revision, sentAt };
    };
    /** Delivers a read's state unless a newer one was delivered already; true when the state changed. */
    const deliver = ({ state, revision, sentAt }: { state: ClusterState; revision: number; sentAt: number }): boolean => {
      if (stop.signal.aborted || revision < lastRevision) return false;
      failing = false;
      lastRevision = revision;
      const text = JSON.stringify(state);
      const changed = text !== last;
      if (changed) {
        last = text;
        onChange(state);
      }
      confirmedAt = Math.max(confirmedAt ?? sentAt, sentAt);
      return changed;
    };
    const fail = (error: unknown) => {
      if (stop.signal.aborted) return;
      failing = true;
      onError?.(error as Error);
    };
    const run = async () => {
      while (!stop.signal.aborted) {
        let streaming = false;
        try {
          const read = await readState();
          deliver(read);
          stream = new AbortController();
          streaming = true;
          // The leader key and the members are not in the read: whatever the stream missed, listeners read again.
          this.tellMembership({ kind: 'resync' });
          await this.client.watchPrefix(this.options.prefix, read.revision + 1, (events) => {
            const keys = events.map((e) => e.kv.key);
            if (keys.some((key) => isStateKey(this.keys, key))) readState().then(deliver, fail);
            if (keys.some((key) => key.startsWith(this.keys.intents))) for (const listener of [...this.intentListeners]) listener();
            for (const change of this.membershipChanges(events)) this.tellMembership(change);
          }, AbortSignal.any([stop.signal, stream.signal]));
        } catch (error) {
          if (stop.signal.aborted) return;
          // A stream that broke (its member died) is not the store failing: the read that
          // restarts it, on whichever member answers, tells. Reported at once, one dead member
          // of three made every sidecar answer /primary with 503 until its next call.
          if (!streaming && !stream.signal.aborted) fail(error);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    };
    void run();
    const check = setInterval(() => {
      readState().then((read) => {
        const wasFailing = failing;
        // A change the stream did not bring: it is stuck, start it again.
        if (deliver(read) && !wasFailing) stream.abort();
      }, fail);
    }, this.options.watchCheckMs ?? 5_000);
    check.unref();
    const watch: StateWatch = {
      stop: () => {
        clearInterval(check);
        stop.abort();
        this.watches.delete(watch);
      },
      confirmedAt: () => confirmedAt,
    };
    this.watches.add(watch);
    return watch;
  }

  async publishMember(name: string, view: MemberView, ttlMs: number): Promise<void> {
    const key = this.keys.members + name;
    const value = JSON.stringify({ view, publishedAt: Date.now() });
    const lease = this.memberLeases.get(name);
    // The lease runs on its own clock: a put does not renew it, a keepalive does.
    if (lease && (await this.client.keepAlive(lease)) > 0) {
      try {
        await this.client.put(key, value, lease);
        return;
      } catch (error) {
        if (!(error instanceof EtcdRequestError && error.code === 5)) throw error;
      }
    }
    const fresh = await this.client.grant(ttlMs / 1000);
    this.memberLeases.set(name, fresh.id);
    await this.client.put(key, value, fresh.id);
  }

  async sqliteIdentities(): Promise<SqliteIdentityRecord[]> {
    const { kvs } = await this.client.range(this.keys.identities, { prefix: true });
    return kvs.map((kv) => JSON.parse(kv.value) as SqliteIdentityRecord).sort((a, b) => a.database.localeCompare(b.database));
  }

  /** A compare-and-set on the key's revision, so an older generation written meanwhile by another process never wins. */
  async recordSqliteIdentity(record: SqliteIdentityRecord): Promise<void> {
    const key = this.keys.identities + record.database;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.client.get(key);
      if (current && (JSON.parse(current.value) as SqliteIdentityRecord).generation > record.generation) return;
      const r = await this.client.txn(
        [current ? { key, target: 'MOD', result: 'EQUAL', modRevision: current.modRevision } : { key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
        [{ put: { key, value: JSON.stringify(record) } }],
      );
      if (r.succeeded) return;
    }
    throw new Error(`etcd: could not record the identity of ${record.database} after ${MAX_CAS_ATTEMPTS} attempts (the key kept changing)`);
  }

  async members(): Promise<MemberRecord[]> {
    const { kvs } = await this.client.range(this.keys.members, { prefix: true });
    return kvs.map((kv) => memberRecordOf(kv.key.slice(this.keys.members.length), kv.value));
  }

  async submitIntent(request: IntentRequest): Promise<string> {
    const id = randomUUID();
    const intent: Omit<Intent, 'id'> = { ...request, submittedAt: Date.now(), state: 'pending', claimedBy: undefined, outcome: undefined };
    const lease = await this.sharedLease('intents', INTENT_RETENTION_S + INTENT_LEASE_ROTATION_MS / 1000, INTENT_LEASE_ROTATION_MS);
    await this.client.put(this.keys.intents + id, JSON.stringify(intent), lease);
    return id;
  }

  /** Heard from the watch's stream (the one the state comes by): no request of its own. */
  onIntentChange(listener: () => void): () => void {
    this.intentListeners.add(listener);
    return () => this.intentListeners.delete(listener);
  }

  /** Heard from the watch's stream, as intents are: the leader key and the members' records. */
  onMembership(listener: (change: MembershipChange) => void): () => void {
    this.membershipListeners.add(listener);
    return () => this.membershipListeners.delete(listener);
  }

  private tellMembership(change: MembershipChange): void {
    for (const listener of [...this.membershipListeners]) listener(change);
  }

  private membershipChanges(events: WatchEvent[]): MembershipChange[] {
    const changes: MembershipChange[] = [];
    for (const { kv, deleted } of events) {
      if (kv.key === this.keys.leader) changes.push({ kind: 'leader' });
      else if (kv.key.startsWith(this.keys.members)) {
        const name = kv.key.slice(this.keys.members.length);
        changes.push({ kind: 'member', name, record: deleted ? undefined : memberRecordOf(name, kv.value) });
      }
    }
    return changes;
  }

  async claimIntent(holder: string): Promise<Intent | undefined> {
    const { kvs } = await this.client.range(this.keys.intents, { prefix: true, sort: { target: 'CREATE', order: 'ASCEND' } });
    for (const kv of kvs) {
      const intent = this.intentOf(kv);
      if (intent.state !== 'pending') continue;
      const claimed: Intent = { ...intent, state: 'claimed', claimedBy: holder };
      const r = await this.client.txn([{ key: kv.key, target: 'MOD', result: 'EQUAL', modRevision: kv.modRevision }], [{ put: { key: kv.key, value: JSON.stringify({ ...claimed, id: undefined }), ignoreLease: true } }]);
      if (r.succeeded) return claimed;
      // Claimed (or finished) by someone else in between: the next one.
    }
    return undefined;
  }

  async finishIntent(id: string, outcome: IntentOutcome): Promise<void> {
    const key = this.keys.intents + id;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const kv = await this.client.get(key);
      if (!kv) return;
      const intent = this.intentOf(kv);
      if (intent.state === 'finished') return;
      const r = await this.client.txn(
        [{ key, target: 'MOD', result: 'EQUAL', modRevision: kv.modRevision }],
        [{ put: { key, value: JSON.stringify({ ...intent, id: undefined, state: 'finished', outcome }), ignoreLease: true } }],
      );
      if (r.succeeded) return;
    }
    throw new Error(`etcd: could not record the outcome of intent ${id} after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async intent(id: string): Promise<Intent | undefined> {
    const kv = await this.client.get(this.keys.intents + id);
    return kv ? this.intentOf(kv) : undefined;
  }

  private intentOf(kv: EtcdKv): Intent {
    const stored = JSON.parse(kv.value) as Omit<Intent, 'id'>;
    return { ...stored, id: kv.key.slice(this.keys.intents.length), claimedBy: stored.claimedBy ?? undefined, outcome: stored.outcome ?? undefined };
  }

  async close(): Promise<void> {
    for (const watch of [...this.watches]) watch.stop();
    this.client.close();
  }
}

function holderOf(kv: EtcdKv): string {
  try {
    return (JSON.parse(kv.value) as { holder: string }).holder;
  } catch {
    return kv.value;
  }
}

const historyKey = (k: Keys, id: number): string => k.history + String(id).padStart(HISTORY_ID_DIGITS, '0');
