import { spawn } from 'node:child_process';
import pg from 'pg';
import type { DatabaseTarget } from '../config/database-url.js';
import type { DataSyncOutcome, Fence } from './engine.js';
import { pgBinary, pgToolEnv } from './pg-tools.js';

type PgTarget = Extract<DatabaseTarget, { engine: 'postgresql' }>;

/** Runs `fn` on a short-lived connection that is always closed. */
export async function withClient<T>(target: PgTarget, timeoutMs: number, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: target.connectionString, connectionTimeoutMillis: timeoutMs, application_name: 'dr-sidecar' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(20);
  }
}

async function setReadOnly(target: PgTarget, on: boolean, timeoutMs: number): Promise<void> {
  await withClient(target, timeoutMs, async (client) => {
    await client.query(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
    await client.query('SELECT pg_reload_conf()');
  });
  // The postmaster reloads asynchronously: a new session shows when it has.
  await until(`default_transaction_read_only = ${on ? 'on' : 'off'} on ${target.host}:${target.port}`, timeoutMs, () =>
    withClient(target, timeoutMs, async (c) => (await c.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only === (on ? 'on' : 'off')),
  );
}

/**
 * A fenced PostgreSQL primary: read-only by default for every new transaction
 * (ALTER SYSTEM, so it survives a restart of the demoted server), every client
 * session ended, and the WAL position at that moment: what a standby must
 * replay before it may take over.
 */
export class PostgresFence implements Fence {
  constructor(
    private readonly target: PgTarget,
    readonly lsn: string,
    private readonly timeoutMs: number,
  ) {}

  static async take(target: PgTarget, timeoutMs: number): Promise<PostgresFence> {
    await setReadOnly(target, true, timeoutMs);
    try {
      const lsn = await withClient(target, timeoutMs, async (client) => {
        const sessions = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
        // A separate statement: in one WHERE clause nothing orders pg_terminate_backend after the pid test.
        const { rows } = await client.query<{ pid: number }>('SELECT pid FROM unnest($1::int[]) AS pid WHERE pg_terminate_backend(pid)', [sessions.rows.map((r) => r.pid)]);
        // pg_terminate_backend only signals: a session in the middle of its COMMIT finishes it,
        // and acknowledges it, before it exits. The WAL position is read once they are all gone,
        // so it covers every commit they acknowledged.
        const pids = rows.map((r) => r.pid);
        if (pids.length > 0) {
          await until(`the sessions of ${target.host}:${target.port} to end`, timeoutMs, async () =>
            (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids])).rows[0]!.n === 0,
          );
        }
        return (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
      });
      return new PostgresFence(target, lsn, timeoutMs);
    } catch (error) {
      // No fence to hand back, so nobody else would lift the read-only setting: a failed fence must not leave the primary read-only.
      await setReadOnly(target, false, timeoutMs).catch(() => undefined);
      throw error;
    }
  }

  async release(): Promise<void> {
    await setReadOnly(this.target, false, this.timeoutMs);
  }

  async keep(): Promise<void> {
    // Stays read-only: a demoted primary that takes writes would split the data.
  }
}

export async function liftReadOnly(target: PgTarget, timeoutMs: number): Promise<void> {
  const on = await withClient(target, timeoutMs, async (c) => (await c.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only === 'on');
  if (on) await setReadOnly(target, false, timeoutMs);
}

export async function isInRecovery(target: PgTarget, timeoutMs: number): Promise<boolean> {
  return withClient(target, timeoutMs, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r);
}

/** A standby replays up to the fenced primary's last WAL position: then it holds every acknowledged commit. */
export async function waitForReplay(standby: PgTarget, lsn: string | undefined, timeoutMs: number): Promise<DataSyncOutcome> {
  const started = Date.now();
  if (lsn) {
    await until(`the standby to replay up to ${lsn}`, timeoutMs, () =>
      withClient(standby, timeoutMs, async (c) => (await c.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0]!.ok),
    );
    return { method: 'streaming', complete: true, detail: `replayed up to the fenced primary's WAL position ${lsn} in ${Date.now() - started} ms` };
  }
  // The primary is gone: replay what was received; commits it acknowledged but never sent are lost.
  const row = await withClient(standby, timeoutMs, async (c) => {
    await until('the standby to replay the WAL it received', timeoutMs, async () =>
      (await c.query<{ ok: boolean }>('SELECT coalesce(pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(), true) AS ok')).rows[0]!.ok,
    );
    return (
      await c.query<{ lsn: string | null; lag: number | null }>(
        'SELECT pg_last_wal_replay_lsn()::text AS lsn, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag',
      )
    ).rows[0]!;
  });
  const outcome: DataSyncOutcome = {
    method: 'streaming',
    complete: false,
    detail: `the primary was unreachable; the standby replayed all WAL it had received (up to ${row.lsn ?? 'unknown'})`,
  };
  if (row.lag !== null) outcome.lagSeconds = row.lag;
  return outcome;
}

export async function promote(target: PgTarget, timeoutMs: number): Promise<void> {
  if (await isInRecovery(target, timeoutMs)) {
    // The switch must not be recorded before the server accepts writes. pg_promote(wait => true)
    // checks only every 100 ms; signalling and watching pg_is_in_recovery() ourselves ends sooner.
    await withClient(target, timeoutMs + 1000, async (c) => {
      const signalled = (await c.query<{ ok: boolean }>('SELECT pg_promote(false) AS ok')).rows[0]!.ok;
      if (!signalled) throw new Error('pg_promote() could not signal the postmaster');
      await until(`${target.host}:${target.port} to leave recovery`, timeoutMs, async () =>
        !(await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r,
      );
    });
  }
  await liftReadOnly(target, timeoutMs);
}

/**
 * Points a standby at a new primary (primary_conninfo is reloadable since
 * PostgreSQL 13) and waits until its WAL receiver streams from it. A standby
 * whose history has diverged from the new primary's (say the new primary was
 * an independent server, or the standby had received WAL the new primary never
 * had) cannot follow: that is an error, not a success, and needs a rebuild.
 */
export async function follow(standby: PgTarget, standbyName: string, primary: PgTarget, timeoutMs: number): Promise<string> {
  if (!(await isInRecovery(standby, timeoutMs))) return 'not a standby; left as it is';
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts = [`host=${quote(primary.host)}`, `port=${primary.port}`, `user=${quote(primary.user)}`, `application_name=${quote(standbyName)}`];
  if (primary.password !== undefined) parts.push(`password=${quote(primary.password)}`);
  await withClient(standby, timeoutMs, async (c) => {
    await c.query(`ALTER SYSTEM SET primary_conninfo = ${pgLiteral(parts.join(' '))}`);
    await c.query('SELECT pg_reload_conf()');
  });
  const waitMs = Math.min(timeoutMs, 5000);
  const started = Date.now();
  try {
    // The standby's receiver shows 'streaming' from the moment it connects, before the new primary
    // has checked the timelines; the new primary's WAL sender reaches 'catchup' or 'streaming' only
    // once it has accepted the standby's starting point.
    await withClient(standby, timeoutMs, (s) =>
      withClient(primary, timeoutMs, (p) =>
        until(`${standbyName} to stream from ${primary.host}:${primary.port}`, waitMs, async () => {
          const sender = await p.query<{ ok: boolean }>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state IN ('catchup', 'streaming')) AS ok",
            [standbyName],
          );
          if (!sender.rows[0]!.ok) return false;
          const receiver = await s.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE sender_host = $1 AND sender_port = $2) AS ok', [
            primary.host,
            primary.port,
          ]);
          return receiver.rows[0]!.ok;
        }),
      ),
    );
  } catch (error) {
    if (!/^timed out/.test((error as Error).message)) throw error;
    throw new Error(
      `pointed at ${primary.host}:${primary.port}, but not streaming from it after ${waitMs / 1000} s ` +
        '(its WAL history may have diverged from the new primary\'s: rebuild it with pg_basebackup or pg_rewind)',
    );
  }
  return `now streaming from ${primary.host}:${primary.port} (after ${Date.now() - started} ms)`;
}

function pgLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Copies an independent server's database: pg_dump of the source piped into
 * pg_restore on the target, in one transaction (a failure leaves the target as
 * it was). Passwords go through the environment only.
 */
export async function dumpRestore(source: PgTarget, target: PgTarget, timeoutMs: number): Promise<DataSyncOutcome> {
  const started = Date.now();
  const dumpEnv = pgToolEnv(source);
  // The target may be a fenced former primary: its restore session must be allowed to write.
  const restoreEnv = { ...pgToolEnv(target), PGOPTIONS: '-c default_transaction_read_only=off' };
  const dump = spawn(pgBinary('pg_dump'), ['--format=custom', '--compress=0', '--no-owner', '--no-privileges'], { env: dumpEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const restore = spawn(pgBinary('pg_restore'), ['--clean', '--if-exists', '--single-transaction', '--no-owner', '--no-privileges', '--exit-on-error', '--dbname', target.database], {
    env: restoreEnv,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  dump.stdout.pipe(restore.stdin);
  const errors = { dump: '', restore: '' };
  dump.stderr.on('data', (d) => (errors.dump += d));
  restore.stderr.on('data', (d) => (errors.restore += d));
  const timer = setTimeout(() => {
    dump.kill('SIGKILL');
    restore.kill('SIGKILL');
  }, timeoutMs);
  const exit = (p: typeof dump | typeof restore) => new Promise<number | null>((r) => p.on('close', r));
  const [dumpCode, restoreCode] = await Promise.all([exit(dump), exit(restore)]);
  clearTimeout(timer);
  if (dumpCode !== 0) throw new Error(`pg_dump of ${source.database} failed (exit ${dumpCode}): ${errors.dump.trim().split('\n')[0]}`);
  if (restoreCode !== 0) throw new Error(`pg_restore into ${target.database} failed (exit ${restoreCode}): ${errors.restore.trim().split('\n')[0]}`);
  return { method: 'dump-restore', complete: true, detail: `pg_dump | pg_restore of ${source.database} in ${Date.now() - started} ms` };
}
