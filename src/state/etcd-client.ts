/**
 * A small client of etcd's v3 JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`,
 * `/v3/lease/*`, `/v3/watch`; keys and values base64), over Node's own fetch:
 * what Patroni speaks, and no gRPC stack to carry. Each call tries the
 * endpoints in turn (the last one that answered first) until one answers or
 * the call's deadline passes, so a dead or frozen member costs a share of the
 * deadline, never a hang.
 */
import { maskDatabaseUrl } from '../config/database-url.js';
import { DrError } from '../errors.js';

/** etcd cannot be reached, or has no quorum: the state is unknown, nothing may act on it. */
export class EtcdUnavailable extends DrError {
  override readonly status = 503;
}

/** etcd answered with an error that another endpoint would repeat (a bad request, a denied permission). */
export class EtcdRequestError extends DrError {
  constructor(
    message: string,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

/** One change a watch reports: the key as it is after it (a deleted key's value is empty). */
export interface WatchEvent {
  kv: EtcdKv;
  deleted: boolean;
}

export interface EtcdKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** The lease ID (an int64 kept as text), or undefined when the key has none. */
  lease: string | undefined;
}

export interface RangeOptions {
  /** Every key that starts with `key`. */
  prefix?: boolean;
  /** Keys from `key` up to the end of the keys that start with `untilEndOf`. */
  untilEndOf?: string;
  limit?: number;
  sort?: { target: 'KEY' | 'CREATE' | 'MOD'; order: 'ASCEND' | 'DESCEND' };
}

export type Compare =
  | { key: string; target: 'CREATE'; result: 'EQUAL' | 'GREATER' | 'LESS'; createRevision: number }
  | { key: string; target: 'MOD'; result: 'EQUAL'; modRevision: number }
  | { key: string; target: 'VALUE'; result: 'EQUAL' | 'NOT_EQUAL'; value: string };

export type TxnOp =
  | { put: { key: string; value: string; lease?: string; ignoreLease?: boolean } }
  | { range: { key: string } & RangeOptions }
  | { delete: { key: string; prefix?: boolean } };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** The keys each range op of the branch that ran found, in op order (empty arrays for puts and deletes). */
  ranges: EtcdKv[][];
}

export interface EtcdClientOptions {
  endpoints: string[];
  /** Bound of one call across every endpoint tried. */
  timeoutMs: number;
}

interface Endpoint {
  /** The URL fetch uses: credentials removed (fetch refuses them in a URL). */
  base: string;
  /** The URL as shown: password masked. */
  shown: string;
  user: string | undefined;
  password: string | undefined;
  token: string | undefined;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | undefined): string => (text ? Buffer.from(text, 'base64').toString('utf8') : '');

/** The end of the key range of every key that starts with `prefix`, base64 (as the gateway wants it). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      bytes[i]! += 1;
      return bytes.subarray(0, i + 1).toString('base64');
    }
  }
  // Every byte 0xff: the range runs to the end of the key space.
  return Buffer.from([0]).toString('base64');
}

function parseEndpoint(url: string): Endpoint {
  const u = new URL(url);
  const user = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.username = '';
  u.password = '';
  return { base: u.toString().replace(/\/+$/, ''), shown: maskDatabaseUrl(url), user, password, token: undefined };
}

/** A failure that another member (or the same one a moment later) may not repeat. */
class Retryable extends Error {}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  lease?: string;
}

const decodeKv = (kv: RawKv): EtcdKv => ({
  key: unb64(kv.key),
  value: unb64(kv.value),
  createRevision: Number(kv.create_revision ?? 0),
  modRevision: Number(kv.mod_revision ?? 0),
  lease: kv.lease && kv.lease !== '0' ? kv.lease : undefined,
});

function rangeRequest(key: string, o: RangeOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { key: b64(key) };
  if (o.prefix) body.range_end = prefixEnd(key);
  else if (o.untilEndOf !== undefined) body.range_end = prefixEnd(o.untilEndOf);
  if (o.limit !== undefined) body.limit = String(o.limit);
  if (o.sort) {
    body.sort_target = o.sort.target;
    body.sort_order = o.sort.order;
  }
  return body;
}

function compareRequest(c: Compare): Record<string, unknown> {
  const base = { key: b64(c.key), target: c.target, result: c.result };
  if (c.target === 'CREATE') return { ...base, create_revision: String(c.createRevision) };
  if (c.target === 'MOD') return { ...base, mod_revision: String(c.modRevision) };
  return { ...base, value: b64(c.value) };
}

function opRequest(op: TxnOp): Record<string, unknown> {
  if ('put' in op) {
    const { key, value, lease, ignoreLease } = op.put;
    return { request_put: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}), ...(ignoreLease ? { ignore_lease: true } : {}) } };
  }
  if ('range' in op) return { request_range: rangeRequest(op.range.key, op.range) };
  return { request_delete_range: { key: b64(op.delete.key), ...(op.delete.prefix ? { range_end: prefixEnd(op.delete.key) } : {}) } };
}

export class EtcdClient {
  private readonly endpoints: Endpoint[];
  /** Index of the endpoint that answered last: tried first. */
  private preferred = 0;
  private closed = false;

  constructor(readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new TypeError('etcd: no endpoint given');
    this.endpoints = options.endpoints.map(parseEndpoint);
  }

  /** The endpoints as they may be shown (passwords masked). */
  get shownEndpoints(): string[] {
    return this.endpoints.map((e) => e.shown);
  }

  close(): void {
    this.closed = true;
  }

  async range(key: string, options: RangeOptions = {}): Promise<{ kvs: EtcdKv[]; revision: number }> {
    const res = await this.call<{ header?: { revision?: string }; kvs?: RawKv[] }>('/v3/kv/range', rangeRequest(key, options));
    return { kvs: (res.kvs ?? []).map(decodeKv), revision: Number(res.header?.revision ?? 0) };
  }

  async get(key: string): Promise<EtcdKv | undefined> {
    return (await this.range(key)).kvs[0];
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  }

  async delete(key: string, options: { prefix?: boolean } = {}): Promise<void> {
    await this.call('/v3/kv/deleterange', opRequest({ delete: { key, ...options } }).request_delete_range as object);
  }

  async txn(compare: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    const res = await this.call<{ header?: { revision?: string }; succeeded?: boolean; responses?: Array<{ response_range?: { kvs?: RawKv[] } }> }>('/v3/kv/txn', {
      compare: compare.map(compareRequest),
      success: success.map(opRequest),
      failure: failure.map(opRequest),
    });
    return {
      succeeded: res.succeeded === true,
      revision: Number(res.header?.revision ?? 0),
      ranges: (res.responses ?? []).map((r) => (r.response_range?.kvs ?? []).map(decodeKv)),
    };
  }

  /** Grants a lease of `ttlSeconds` (etcd raises it to its minimum, 2 s by default); returns its ID and granted TTL. */
  async grant(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const res = await this.call<{ ID: string; TTL: string }>('/v3/lease/grant', { TTL: String(Math.max(1, Math.ceil(ttlSeconds))) });
    return { id: res.ID, ttl: Number(res.TTL) };
  }

  /** Renews a lease once; returns its new TTL in seconds, 0 when it has expired (or never existed). */
  async keepAlive(id: string): Promise<number> {
    const res = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: id });
    return Number(res.result?.TTL ?? 0);
  }

  /** Whole seconds the lease has left (0: less than one), or undefined when it has expired. */
  async timeToLive(id: string): Promise<number | undefined> {
    const res = await this.call<{ TTL?: string }>('/v3/lease/timetolive', { ID: id });
    // JSON of proto3 leaves zeros out: a missing TTL is 0 (under a second left); an expired lease says -1.
    const ttl = Number(res.TTL ?? 0);
    return ttl >= 0 ? ttl : undefined;
  }

  /** Revokes a lease (its keys are deleted with it); an unknown lease is fine. */
  async revoke(id: string): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: id });
    } catch (error) {
      if (!(error instanceof EtcdRequestError && error.code === 5)) throw error;
    }
  }

  /**
   * Streams the changes of every key under `prefix` from `startRevision` to
   * `onEvents` (the keys changed, the revision) until `signal` aborts or the stream
   * breaks (the member died, the revision was compacted): then it throws and the
   * caller starts again from a fresh read. One member at a time; a broken stream moves
   * the next call to the next member.
   */
  async watchPrefix(prefix: string, startRevision: number, onEvents: (events: WatchEvent[], revision: number) => void, signal: AbortSignal): Promise<never> {
    if (this.closed) throw new EtcdUnavailable('etcd state store is closed');
    const index = this.preferred;
    const endpoint = this.endpoints[index]!;
    try {
      if (endpoint.user && !endpoint.token) await this.authenticate(endpoint, this.options.timeoutMs);
      // The connect is bounded like any call; the stream then waits as long as it must.
      const connect = new AbortController();
      const timer = setTimeout(() => connect.abort(new Error(`no answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
      const res = await fetch(`${endpoint.base}/v3/watch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(endpoint.token ? { authorization: endpoint.token } : {}) },
        body: JSON.stringify({ create_request: { ...rangeRequest(prefix, { prefix: true }), start_revision: String(startRevision) } }),
        signal: AbortSignal.any([signal, connect.signal]),
      }).finally(() => clearTimeout(timer));
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) this.watchLine(line, onEvents);
        }
      }
      throw new Error('the watch stream ended');
    } catch (error) {
      if (signal.aborted) throw signal.reason ?? error;
      // The next call (and the next watch) starts at the next member.
      if (this.preferred === index) this.preferred = (index + 1) % this.endpoints.length;
      throw new EtcdUnavailable(`etcd watch at ${endpoint.shown} broke: ${(error as Error).message}`);
    }
  }

  private watchLine(line: string, onEvents: (events: WatchEvent[], revision: number) => void): void {
    const msg = JSON.parse(line) as {
      result?: { header?: { revision?: string }; events?: Array<{ type?: string; kv?: RawKv }>; canceled?: boolean; compact_revision?: string; cancel_reason?: string };
      error?: { message?: string };
    };
    if (msg.error) throw new Error(msg.error.message ?? 'watch error');
    const result = msg.result ?? {};
    if (result.canceled || (result.compact_revision && result.compact_revision !== '0')) {
      throw new Error(`watch cancelled: ${result.cancel_reason ?? `compacted at ${result.compact_revision}`}`);
    }
    if (result.events?.length) onEvents(result.events.map((e) => ({ kv: decodeKv(e.kv ?? {}), deleted: e.type === 'DELETE' })), Number(result.header?.revision ?? 0));
  }

  /**
   * One JSON-gateway call: endpoints in turn, from the last one that answered,
   * passes over all of them until one answers or `timeoutMs` has passed. Each
   * attempt gets an equal share of what is left, so a frozen member cannot eat the whole budget.
   */
  async call<T = Record<string, unknown>>(method: string, body: object): Promise<T> {
    if (this.closed) throw new EtcdUnavailable('etcd state store is closed');
    const deadline = Date.now() + this.options.timeoutMs;
    const n = this.endpoints.length;
    const failures = new Map<string, string>();
    for (let pass = 0; Date.now() < deadline; pass++) {
      for (let i = 0; i < n && Date.now() < deadline; i++) {
        const index = (this.preferred + i) % n;
        const endpoint = this.endpoints[index]!;
        const share = Math.max(200, (deadline - Date.now()) / (n - i));
        try {
          const answer = await this.attempt<T>(endpoint, method, body, Math.min(share, deadline - Date.now()));
          this.preferred = index;
          return answer;
        } catch (error) {
          if (!(error instanceof Retryable)) throw error;
          failures.set(endpoint.shown, error.message);
        }
      }
      // Everything refused at once (members restarting, an election): wait a little before the next pass.
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * (pass + 1), Math.max(0, deadline - Date.now()))));
    }
    const why = [...failures].map(([url, message]) => `${url}: ${message}`).join('; ');
    throw new EtcdUnavailable(
      `etcd did not answer ${method} within ${this.options.timeoutMs} ms at any of ${this.shownEndpoints.join(', ')}` +
        ` (${why || 'no attempt finished'}); check that a majority of the etcd members are up and reachable`,
    );
  }

  private async attempt<T>(endpoint: Endpoint, method: string, body: object, timeoutMs: number, authRetry = true): Promise<T> {
    if (endpoint.user && !endpoint.token) await this.authenticate(endpoint, timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(endpoint.base + method, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(endpoint.token ? { authorization: endpoint.token } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(Math.max(1, Math.round(timeoutMs))),
      });
      text = await res.text();
    } catch (error) {
      const e = error as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${Math.round(timeoutMs)} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new Retryable(why);
    }
    // Streaming methods (lease keepalive, watch) answer newline-separated JSON objects; the first is the answer.
    const first = text.split('\n').find((line) => line.trim() !== '') ?? '{}';
    let parsed: { error?: unknown; message?: string; code?: number } & Record<string, unknown>;
    try {
      parsed = JSON.parse(first) as typeof parsed;
    } catch {
      throw new Retryable(`HTTP ${res.status}: not JSON: ${first.slice(0, 200)}`);
    }
    const streamed = (parsed.error ?? undefined) as { grpc_code?: number; message?: string } | string | undefined;
    if (res.ok && !streamed) return parsed as T;
    const code = typeof streamed === 'object' ? streamed.grpc_code : parsed.code;
    const message = (typeof streamed === 'object' ? streamed.message : parsed.message) ?? String(streamed ?? `HTTP ${res.status}`);
    if (authRetry && endpoint.user && /invalid auth token|auth store is old|user name is empty/.test(message)) {
      endpoint.token = undefined;
      return this.attempt<T>(endpoint, method, body, timeoutMs, false);
    }
    // 14 Unavailable, 4 DeadlineExceeded: no leader, a leader change, a timed-out proposal: another member may do better.
    if (code === 14 || code === 4 || res.status >= 500 || /no leader|leader changed|timed out|not capable|too many requests/.test(message)) {
      throw new Retryable(message);
    }
    throw new EtcdRequestError(`etcd ${method} at ${endpoint.shown}: ${message}`, code);
  }

  private async authenticate(endpoint: Endpoint, timeoutMs: number): Promise<void> {
    try {
      const res = await this.attempt<{ token?: string }>({ ...endpoint, user: undefined }, '/v3/auth/authenticate', { name: endpoint.user, password: endpoint.password ?? '' }, timeoutMs, false);
      endpoint.token = res.token;
    } catch (error) {
      // Credentials for a cluster without authentication: talk to it without a token.
      if (!(error instanceof EtcdRequestError && /authentication is not enabled/.test(error.message))) throw error;
      endpoint.user = undefined;
    }
  }
}
