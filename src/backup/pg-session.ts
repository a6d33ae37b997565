import pg from 'pg';
import type { DatabaseConfig } from '../config/load.js';
import { DrError } from '../errors.js';
import type { TableCounts } from './engine-backup.js';
import type { PgTarget } from './pg-process.js';

const CONNECT_TIMEOUT_MS = 10_000;

// Ordinary tables of the database's own schemas, quoted as SQL names; tables that belong
// to an extension are left out: CREATE EXTENSION fills them, not the dump.
const TABLES_SQL = `
SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1`;

export function pgTargetOf(db: DatabaseConfig): PgTarget {
  if (db.target.engine !== 'postgresql') throw new DrError(`${db.name} is not a PostgreSQL database`);
  return db.target;
}

/** The same server and credentials, another database. */
export function withDatabase(target: PgTarget, database: string): PgTarget {
  const url = new URL(target.connectionString);
  url.pathname = `/${encodeURIComponent(database)}`;
  return { ...target, database, connectionString: url.toString() };
}

/** A connection for the sidecar's own queries; a failure names the database by its masked URL. */
export async function connectPg(target: PgTarget, shownAs: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.connectionString, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'dr-sidecar backup' });
  client.on('error', () => undefined); // a broken connection fails the query that uses it
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new DrError(`cannot connect to ${shownAs}: ${describePgError(error)}`);
  }
}

/** Exact rows per table, as the client's transaction sees them. */
export async function countRows(client: pg.Client): Promise<TableCounts> {
  const { rows } = await client.query<{ name: string }>(TABLES_SQL);
  const counts: TableCounts = {};
  for (const { name } of rows) {
    const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`);
    counts[name] = Number(result.rows[0]!.n);
  }
  return counts;
}

export function describePgError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `host not found (${e.code})`;
  if (message === 'Connection terminated due to connection timeout') return 'connection timed out';
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) return `${message} (SQLSTATE ${e.code})`;
  return e.code ? `${e.code}: ${message}` : message;
}
