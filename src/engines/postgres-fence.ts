import type pg from 'pg';
import { ConflictError } from '../errors.js';
import type { Fence } from './engine.js';
import { pgIdentifier, until, withClient, type PgTarget } from './pg-client.js';
import { fenceRefusal, promoteRefusal, type FencePrivileges } from './postgres-privileges.js';

/*
 * A fence acts on one database, never on its server: the server may hold other
 * databases (the guide's own config puts the primary and its backup on one
 * server), and they keep their sessions and their writes.
 */

/**
 * The sidecar's own session may write whatever the database's default, and its
 * commits do not wait for a synchronous standby: the one that should confirm
 * them may be the one that is gone (a former primary fenced on its return).
 */
async function writable(client: pg.Client): Promise<void> {
  await client.query('SET default_transaction_read_only = off');
  await client.query('SET synchronous_commit = local');
}

/** ALTER DATABASE: new sessions of this database only; it is in the catalog, so it survives a restart. */
async function setDatabaseReadOnly(client: pg.Client, database: string, on: boolean): Promise<void> {
  await writable(client);
  const setting = on ? 'SET default_transaction_read_only = on' : 'RESET default_transaction_read_only';
  await client.query(`ALTER DATABASE ${pgIdentifier(database)} ${setting}`);
}

/**
 * The sessions a fence ends. Without pg_read_all_stats a role sees no backend_type of
 * another role's session (NULL): such a session counts, as it may be a client's.
 */
const SESSIONS_OF_THIS_DATABASE = "datname = current_database() AND coalesce(backend_type, 'client backend') = 'client backend' AND pid <> pg_backend_pid()";

const FENCE_PRIVILEGES_SQL = `
SELECT current_user::text AS role, me.rolsuper AS superuser, pg_has_role(current_user, d.datdba, 'USAGE') AS owns_database,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_session_kinds,
       COALESCE((SELECT jsonb_agg(DISTINCT jsonb_build_object('role', r.rolname::text, 'superuser', r.rolsuper))
                 FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
                 WHERE ${SESSIONS_OF_THIS_DATABASE}
                   AND (r.rolsuper OR NOT (pg_has_role(current_user, r.oid, 'USAGE') OR pg_has_role(current_user, 'pg_signal_backend', 'USAGE')))),
                '[]') AS unsignalable
FROM pg_roles me, pg_database d
WHERE me.rolname = current_user AND d.datname = current_database()`;

async function fencePrivileges(client: pg.Client): Promise<FencePrivileges> {
  const row = (
    await client.query<{ role: string; superuser: boolean; owns_database: boolean; sees_session_kinds: boolean; unsignalable: FencePrivileges['unsignalable'] }>(
      FENCE_PRIVILEGES_SQL,
    )
  ).rows[0]!;
  return { role: row.role, superuser: row.superuser, ownsDatabase: row.owns_database, seesSessionKinds: row.sees_session_kinds, unsignalable: row.unsignalable };
}

/** Ends the client sessions of this database (not of the server), and waits until they are gone. */
async function endSessions(client: pg.Client, target: PgTarget, timeoutMs: number): Promise<void> {
  const sessions = await client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE ${SESSIONS_OF_THIS_DATABASE}`);
  // A separate statement: in one WHERE clause nothing orders pg_terminate_backend after the pid test.
  const { rows } = await client.query<{ pid: number }>('SELECT pid FROM unnest($1::int[]) AS pid WHERE pg_terminate_backend(pid)', [sessions.rows.map((r) => r.pid)]);
  // pg_terminate_backend only signals: a session in the middle of its COMMIT finishes it,
  // and acknowledges it, before it exits. The WAL position is read once they are all gone,
  // so it covers every commit they acknowledged.
  const pids = rows.map((r) => r.pid);
  if (pids.length === 0) return;
  await until(`the sessions of ${target.database} on ${target.host}:${target.port} to end`, timeoutMs, async () =>
    (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids])).rows[0]!.n === 0,
  );
}

/**
 * A fenced PostgreSQL primary: its database read-only by default for every new
 * transaction, every client session of that database ended, and the WAL
 * position after that: what a standby must replay before it may take over.
 */
export class PostgresFence implements Fence {
  constructor(
    private readonly target: PgTarget,
    readonly lsn: string,
    private readonly timeoutMs: number,
  ) {}

  static async take(target: PgTarget, timeoutMs: number): Promise<PostgresFence> {
    const lsn = await withClient(target, timeoutMs, async (client) => {
      // Refused before anything changes: a role that could set the fence but not end the sessions would leave half a fence.
      const refusal = fenceRefusal(target.database, await fencePrivileges(client));
      if (refusal) throw new ConflictError(refusal);
      await setDatabaseReadOnly(client, target.database, true);
      try {
        await endSessions(client, target, timeoutMs);
        return (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
      } catch (error) {
        // No fence to hand back, so nobody else would lift it: a failed fence must not leave the database read-only.
        await setDatabaseReadOnly(client, target.database, false).catch(() => undefined);
        throw error;
      }
    });
    return new PostgresFence(target, lsn, timeoutMs);
  }

  async release(): Promise<void> {
    await withClient(this.target, this.timeoutMs, (client) => setDatabaseReadOnly(client, this.target.database, false));
  }

  async keep(): Promise<void> {
    // Stays read-only: a demoted primary that takes writes would split the data.
  }
}

/** Throws (ConflictError) when the sidecar's role could not promote this database, before anything is changed. */
export async function checkPromotable(target: PgTarget, timeoutMs: number): Promise<void> {
  const row = await withClient(target, timeoutMs, async (c) =>
    (
      await c.query<{ role: string; superuser: boolean; owns_database: boolean; in_recovery: boolean; can_promote: boolean }>(
        `SELECT current_user::text AS role, me.rolsuper AS superuser, pg_has_role(current_user, d.datdba, 'USAGE') AS owns_database,
                pg_is_in_recovery() AS in_recovery, has_function_privilege('pg_promote(boolean, integer)', 'EXECUTE') AS can_promote
         FROM pg_roles me, pg_database d WHERE me.rolname = current_user AND d.datname = current_database()`,
      )
    ).rows[0]!,
  );
  const refusal = promoteRefusal(target.database, {
    role: row.role,
    superuser: row.superuser,
    ownsDatabase: row.owns_database,
    inRecovery: row.in_recovery,
    canPromote: row.can_promote,
  });
  if (refusal) throw new ConflictError(refusal);
}

/**
 * Lets writes reach the promoted database: lifts its own fence (a fenced former
 * primary, or the old primary's fence that reached a standby through the WAL),
 * then checks that a new session of it may write.
 */
export async function liftReadOnly(target: PgTarget, timeoutMs: number): Promise<void> {
  await withClient(target, timeoutMs, async (c) => {
    const { rows } = await c.query<{ fenced: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                      WHERE d.datname = current_database() AND s.setrole = 0
                        AND EXISTS (SELECT 1 FROM unnest(s.setconfig) AS c WHERE c LIKE 'default_transaction_read_only=%')) AS fenced`,
    );
    if (rows[0]!.fenced) await setDatabaseReadOnly(c, target.database, false);
  });
  const left = await readOnlySource(target, timeoutMs);
  if (!left) return;
  if (left === 'configuration file') return liftServerFence(target, timeoutMs);
  throw new Error(`${target.database} stays read-only: default_transaction_read_only = on comes from its ${left} setting; reset it, then try again`);
}

/** Where the read-only default of a new session of this database comes from, or undefined when it may write. */
async function readOnlySource(target: PgTarget, timeoutMs: number): Promise<string | undefined> {
  return withClient(target, timeoutMs, async (c) => {
    const row = (await c.query<{ setting: string; source: string }>("SELECT setting, source FROM pg_settings WHERE name = 'default_transaction_read_only'")).rows[0]!;
    return row.setting === 'on' ? row.source : undefined;
  });
}

/**
 * A server-wide read-only default (ALTER SYSTEM: the fence of dr-sidecar before
 * it fenced databases one by one). Lifted only when the server holds no other
 * database (besides `postgres` and the templates): otherwise lifting it would
 * let writes into a database it may still fence, so the promotion stops and
 * says what to do.
 */
async function liftServerFence(target: PgTarget, timeoutMs: number): Promise<void> {
  const server = `${target.host}:${target.port}`;
  await withClient(target, timeoutMs, async (c) => {
    const others = (
      await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE NOT datistemplate AND datname NOT IN (current_database(), 'postgres') ORDER BY datname")
    ).rows.map((r) => r.datname);
    if (others.length > 0) {
      throw new ConflictError(
        `${target.database} stays read-only: the whole server ${server} has default_transaction_read_only = on (ALTER SYSTEM, as an earlier dr-sidecar fenced), ` +
          `and it also holds ${others.join(', ')}, which lifting it would open to writes. Make read-only each that must stay so ` +
          `(ALTER DATABASE … SET default_transaction_read_only = on), then ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()`,
      );
    }
    await writable(c);
    await c.query('ALTER SYSTEM RESET default_transaction_read_only');
    await c.query('SELECT pg_reload_conf()');
  });
  // The postmaster reloads asynchronously: a new session shows when it has.
  try {
    await until(`${server} to reload its configuration`, timeoutMs, async () => (await readOnlySource(target, timeoutMs)) === undefined);
  } catch {
    throw new Error(`${target.database} stays read-only: default_transaction_read_only = on is set in ${server}'s postgresql.conf; remove it there and reload`);
  }
}
