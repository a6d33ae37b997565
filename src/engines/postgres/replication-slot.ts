import type pg from 'pg';

/** The sidecar's replication slot on a primary, as pg_replication_slots shows it. */
export interface SlotState {
  exists: boolean;
  active: boolean;
  /** WAL the server keeps for the slot: current position minus the slot's restart_lsn. */
  retainedBytes: number;
  /** `reserved`, `extended`, `unreserved`, or `lost` (the server removed WAL the slot needed). */
  walStatus: string | null;
}

export async function readSlot(client: pg.Client, slot: string): Promise<SlotState> {
  const { rows } = await client.query<{ active: boolean; retained: string | null; wal_status: string | null }>(
    `SELECT active, (pg_current_wal_lsn() - restart_lsn)::bigint::text AS retained, wal_status
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return { exists: false, active: false, retainedBytes: 0, walStatus: null };
  return { exists: true, active: row.active, retainedBytes: Number(row.retained ?? 0), walStatus: row.wal_status };
}

/** Creates the slot with its WAL reserved from now on (so nothing is removed before pg_receivewal first connects). */
export async function createSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
}

/** Drops the slot, ending the walsender that holds it first (a slot in use cannot be dropped). */
export async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '42704') return; // already gone
      if (code !== '55006') throw error; // 55006: still active, its walsender ending
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** What archiving needs of the role, and of the server. */
export interface ArchivePrivileges {
  replication: boolean;
  superuser: boolean;
  canSwitchWal: boolean;
  walLevel: string;
  /** `max_slot_wal_keep_size` in MB; -1 unlimited. */
  maxSlotWalKeepMb: number;
}

export async function readArchivePrivileges(client: pg.Client): Promise<ArchivePrivileges> {
  const { rows } = await client.query<{ rep: boolean; su: boolean; sw: boolean; wl: string; keep: string }>(
    `SELECT r.rolreplication AS rep, r.rolsuper AS su, has_function_privilege('pg_switch_wal()', 'EXECUTE') AS sw,
            current_setting('wal_level') AS wl,
            (SELECT CASE WHEN setting = '-1' THEN -1 ELSE setting::bigint END FROM pg_settings WHERE name = 'max_slot_wal_keep_size')::text AS keep
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const row = rows[0]!;
  return { replication: row.rep || row.su, superuser: row.su, canSwitchWal: row.sw, walLevel: row.wl, maxSlotWalKeepMb: Number(row.keep) };
}

/** Why archiving cannot run with these privileges, naming what to grant; undefined when it can. */
export function archiveRefusal(database: string, role: string, p: ArchivePrivileges): string | undefined {
  if (!p.replication) {
    return `cannot archive the WAL of ${database}: role "${role}" lacks the REPLICATION attribute that pg_receivewal and pg_basebackup need ` +
      `(ALTER ROLE "${role}" REPLICATION; and a "replication" line for it in pg_hba.conf)`;
  }
  if (p.walLevel === 'minimal') return `cannot archive the WAL of ${database}: its server runs with wal_level = minimal (set wal_level = replica and restart it)`;
  return undefined;
}
