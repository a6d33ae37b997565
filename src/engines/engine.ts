/** What one probe of a database found. */
export interface ProbeResult {
  up: boolean;
  /** Epoch milliseconds when the probe finished. */
  checkedAt: number;
  /** Wall time of the probe: until the answer, the error, or the timeout. */
  responseTimeSeconds: number;
  sizeBytes?: number;
  /** Sessions connected to this database (PostgreSQL). */
  connections?: number;
  /** What the server itself says it is (PostgreSQL: pg_is_in_recovery()). */
  inRecovery?: boolean;
  /** Seconds the standby's replay is behind (PostgreSQL standby). */
  replicationLagSeconds?: number;
  /** Why it is down, in words; never holds a secret. */
  error?: string;
}

export type EngineKind = 'sqlite' | 'postgresql';

/** One database, as the sidecar reaches it. Adapters: engines/sqlite.ts, engines/postgres.ts. */
export interface Engine {
  readonly name: string;
  readonly kind: EngineKind;
  /** Connection URL with the password masked. */
  readonly displayUrl: string;
  /** Never rejects: a failure is a result with `up: false`; bounded by `timeoutMs`. */
  probe(timeoutMs: number): Promise<ProbeResult>;
  /** Releases connections, pools and workers. */
  close(): Promise<void>;
}

export function downResult(startedAt: number, error: string): ProbeResult {
  const now = performance.now();
  return { up: false, checkedAt: Date.now(), responseTimeSeconds: (now - startedAt) / 1000, error };
}
