import pg from 'pg';
import type { DatabaseConfig } from '../config/load.js';
import type { DatabaseTarget } from '../config/database-url.js';
import { downResult, type DataSyncOutcome, type Engine, type Fence, type ProbeResult } from './engine.js';
import { dumpRestore, follow, isInRecovery, promote, waitForReplay } from './postgres-failover.js';
import { checkPromotable, PostgresFence } from './postgres-fence.js';

// One round trip. Lag is 0 only while the standby is streaming and has replayed all it
// received; a standby cut off from its primary shows lag growing from its last replay.
// The probe's session is new, so its default_transaction_read_only is what an application's
// new session of this database gets: on when the database (or its server) is fenced.
const PROBE_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('default_transaction_read_only') = 'on' AS read_only,
       pg_database_size(current_database())::bigint AS size_bytes,
       (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())::int AS connections,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                 AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
            ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()))::float8
       END AS lag_seconds,
       (CASE WHEN pg_is_in_recovery() THEN GREATEST(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
             ELSE pg_current_wal_lsn() END)::text AS wal_lsn`;

interface ProbeRow {
  in_recovery: boolean;
  read_only: boolean;
  size_bytes: string;
  connections: number;
  lag_seconds: number | null;
  wal_lsn: string | null;
}

/** A pg_lsn ('16/B374D848') as a number that compares. */
function lsnValue(lsn: string): bigint {
  const [high, low] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

export class PostgresEngine implements Engine {
  readonly kind = 'postgresql' as const;
  readonly replicatedBySidecar = false;
  readonly name: string;
  readonly displayUrl: string;
  readonly target: Extract<DatabaseTarget, { engine: 'postgresql' }>;
  private readonly connectionString: string;
  /**
   * While this server answers as a primary: its WAL position at the last probe that reached it,
   * and when the probes began to fail after that one.
   */
  private lastSeenAsPrimary: { lsn: string; at: number; lostAt: number | undefined } | undefined;

  constructor(
    config: DatabaseConfig,
    private readonly scrub: (text: string) => string,
  ) {
    if (config.target.engine !== 'postgresql') throw new Error(`${config.name} is not a PostgreSQL database`);
    this.name = config.name;
    this.displayUrl = config.displayUrl;
    this.target = config.target;
    this.connectionString = config.target.connectionString;
  }

  /**
   * Each probe opens its own connection and closes it: it sees what a new
   * application connection would see (a postmaster that no longer accepts, a
   * failing authentication), where a long-lived session could still answer.
   */
  async probe(timeoutMs: number): Promise<ProbeResult> {
    const startedAt = performance.now();
    const client = new pg.Client({
      connectionString: this.connectionString,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      statement_timeout: timeoutMs,
      application_name: 'dr-sidecar',
    });
    client.on('error', () => {
      // A broken socket after the probe answered: the next probe will see it.
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`probe timed out after ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      const row = await Promise.race([this.query(client), deadline]);
      const result: ProbeResult = {
        up: true,
        checkedAt: Date.now(),
        responseTimeSeconds: (performance.now() - startedAt) / 1000,
        sizeBytes: Number(row.size_bytes),
        connections: row.connections,
        inRecovery: row.in_recovery,
        readOnly: row.read_only,
      };
      if (row.lag_seconds !== null) result.replicationLagSeconds = row.lag_seconds;
      if (row.wal_lsn !== null) result.walPosition = row.wal_lsn;
      this.lastSeenAsPrimary = !row.in_recovery && row.wal_lsn !== null ? { lsn: row.wal_lsn, at: result.checkedAt, lostAt: undefined } : undefined;
      return result;
    } catch (error) {
      const down = downResult(startedAt, this.scrub(describe(error)));
      if (this.lastSeenAsPrimary && this.lastSeenAsPrimary.lostAt === undefined) {
        this.lastSeenAsPrimary.lostAt = down.checkedAt - down.responseTimeSeconds * 1000;
      }
      return down;
    } finally {
      clearTimeout(timer);
      // end() waits for the server's goodbye; a hung server never sends it, so drop the socket.
      const socket = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
      client.end().catch(() => undefined);
      socket?.destroy();
    }
  }

  private async query(client: pg.Client): Promise<ProbeRow> {
    await client.connect();
    const { rows } = await client.query<ProbeRow>(PROBE_SQL);
    return rows[0]!;
  }

  lagBehind(source: Engine, probe: ProbeResult): number | undefined {
    const seen = source instanceof PostgresEngine ? source.lastSeenAsPrimary : undefined;
    if (!seen || !probe.up || !probe.inRecovery || probe.walPosition === undefined) return undefined;
    if (lsnValue(probe.walPosition) < lsnValue(seen.lsn)) return undefined;
    return Math.max(0, ((seen.lostAt ?? Date.now()) - seen.at) / 1000);
  }

  fence(timeoutMs: number): Promise<Fence> {
    return PostgresFence.take(this.target, timeoutMs);
  }

  /**
   * A standby catches up by replaying WAL (to the fence's position when the old
   * primary was fenced); an independent server gets a dump of the source.
   */
  async catchUp(source: Engine, fence: Fence | undefined, timeoutMs: number): Promise<DataSyncOutcome> {
    if (!(source instanceof PostgresEngine)) throw new Error(`cannot copy ${source.kind} database ${source.name} into PostgreSQL database ${this.name}`);
    if (await isInRecovery(this.target, timeoutMs)) {
      return waitForReplay(this.target, fence instanceof PostgresFence ? fence.lsn : undefined, timeoutMs);
    }
    return dumpRestore(source.target, this.target, timeoutMs);
  }

  checkPromotable(timeoutMs: number): Promise<void> {
    return checkPromotable(this.target, timeoutMs);
  }

  promote(timeoutMs: number): Promise<void> {
    return promote(this.target, timeoutMs);
  }

  follow(primary: Engine): Promise<string> {
    if (!(primary instanceof PostgresEngine)) return Promise.resolve('not PostgreSQL; left as it is');
    return follow(this.target, this.name, primary.target, 10_000);
  }

  async close(): Promise<void> {
    // Probes hold no connection between them.
  }
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `host not found (${e.code})`;
  if (message === 'Connection terminated due to connection timeout') return 'connection timed out';
  if (message === 'Query read timeout') return 'query timed out';
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) return `${message} (SQLSTATE ${e.code})`;
  return e.code ? `${e.code}: ${message}` : message;
}
