import { spawn } from 'node:child_process';
import type { DataSyncOutcome } from './engine.js';
import { until, withClient, type PgTarget } from './pg-client.js';
import { pgBinary, pgToolEnv } from './pg-tools.js';
import { liftReadOnly } from './postgres-fence.js';

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
  // The target may be a fenced former primary: its restore session (only that one) must be allowed to write,
  // and its commit must not wait for a synchronous standby: those of a former primary follow the new one now,
  // so the restore would wait for ever (the fence's own session commits locally too).
  const restoreEnv = { ...pgToolEnv(target), PGOPTIONS: '-c default_transaction_read_only=off -c synchronous_commit=local' };
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
