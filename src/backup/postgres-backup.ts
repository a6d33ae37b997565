import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import type { DatabaseConfig } from '../config/load.js';
import { pgBinary } from '../engines/pg-tools.js';
import { DrError } from '../errors.js';
import { ScratchUnavailableError, type Dump, type EngineBackup, type ScratchCheck, type TableCounts } from './engine-backup.js';
import { ownerGone } from './owner.js';
import { dbnameConninfo, restoreArchive, startPgTool, toolReason } from './pg-process.js';
import { connectPg, countRows, describePgError, pgTargetOf, withDatabase } from './pg-session.js';

/** pg_dump waits this long for a table lock (a long migration) before it gives up. */
const LOCK_WAIT_MS = 60_000;

export const postgresBackup: EngineBackup = {
  format: 'postgresql-custom',
  dump: dumpPostgres,
  async restore(db: DatabaseConfig, content: Readable): Promise<void> {
    // --clean --if-exists: the objects of the archive replace their namesakes, inside the one transaction.
    await restoreArchive(content, pgTargetOf(db), ['--clean', '--if-exists'], `restore into ${db.name}`);
  },
  check: checkInScratchDatabase,
};

/**
 * pg_dump in custom format, uncompressed (the sidecar gzips the stream in a
 * thread of its own, beside pg_dump, as `pg_dump | gzip` would). pg_dump uses
 * a snapshot exported by the sidecar's own transaction, so the row counts the
 * sidecar takes in that transaction are exactly what the archive holds.
 */
async function dumpPostgres(db: DatabaseConfig): Promise<Dump> {
  const target = pgTargetOf(db);
  pgBinary('pg_dump');
  const client = await connectPg(target, `${db.name} (${db.displayUrl})`);
  let snapshot: string | undefined;
  let sourceBytes: number;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    snapshot = await exportSnapshot(client);
    sourceBytes = Number((await client.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]!.n);
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new DrError(`cannot start a backup of ${db.name}: ${describePgError(error)}`);
  }
  const snapshotAt = new Date();
  const args = ['--format=custom', '--compress=0', '--no-password', `--lock-wait-timeout=${LOCK_WAIT_MS}`];
  if (snapshot) args.push(`--snapshot=${snapshot}`);
  args.push(`--dbname=${dbnameConninfo(target.database)}`);
  const run = startPgTool('pg_dump', args, target, { stdin: 'ignore', stdout: 'pipe' });
  const counting: Promise<TableCounts | null> = snapshot ? countRows(client) : Promise.resolve(null);
  counting.catch(() => undefined);
  const finished = (async () => {
    const code = await run.exited;
    if (code !== 0) throw new DrError(`pg_dump of ${db.name} failed: ${toolReason(run.stderr())}`);
    return await counting.catch((error: unknown) => {
      throw new DrError(`counting the rows of ${db.name} failed: ${describePgError(error)}`);
    });
  })();
  finished.catch(() => undefined); // the caller awaits it once the stream has ended
  const close = async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
    await run.exited;
    // Ending the connection also stops a count still running after a failed dump.
    await client.end().catch(() => undefined);
    await counting.catch(() => undefined);
  };
  return { content: run.child.stdout!, contentBytes: undefined, snapshotAt, sourceBytes, finished, close };
}

/**
 * A snapshot id for pg_dump, or undefined where the server cannot export one
 * (then pg_dump takes its own and rows are not counted). Not in a savepoint:
 * a subtransaction cannot export a snapshot.
 */
async function exportSnapshot(client: pg.Client): Promise<string | undefined> {
  try {
    return (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
  } catch {
    await client.query('ROLLBACK');
    return undefined;
  }
}

// Scratch databases are named after their maker, so a crashed verify's leftover can be told from one at work.
const HOST_TAG = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
const SCRATCH_PREFIX = 'dr_verify_';
const SCRATCH_NAME = new RegExp(`^${SCRATCH_PREFIX}([0-9a-f]{8})_(\\d+)_(\\d+)_[0-9a-f]+$`);

/**
 * Restores the archive into a new database on the server of `db` (same
 * encoding and locale), counts its rows, drops it. Needs CREATEDB.
 */
async function checkInScratchDatabase(content: Readable, _workDir: string, db: DatabaseConfig | undefined): Promise<ScratchCheck> {
  if (db?.target.engine !== 'postgresql') {
    throw new ScratchUnavailableError('a PostgreSQL backup is checked by a restore on the server it came from, and that database is not configured (or not PostgreSQL)');
  }
  const target = pgTargetOf(db);
  const admin = await connectPg(target, `${db.name} (${db.displayUrl})`).catch((error: unknown) => {
    throw new ScratchUnavailableError((error as Error).message);
  });
  const scratch = `${SCRATCH_PREFIX}${HOST_TAG}_${process.pid}_${Date.now()}_${randomBytes(3).toString('hex')}`;
  try {
    await dropLeftoverScratch(admin);
    await createScratch(admin, scratch, db.name);
    const scratchTarget = withDatabase(target, scratch);
    await restoreArchive(content, scratchTarget, ['--no-owner', '--no-privileges'], `restore into scratch database ${scratch}`);
    const reader = await connectPg(scratchTarget, `scratch database ${scratch}`);
    try {
      const tables = await countRows(reader);
      return { tables, detail: `restored into scratch database ${scratch} on ${target.host}:${target.port}` };
    } finally {
      await reader.end().catch(() => undefined);
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(scratch)} WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

async function createScratch(admin: pg.Client, scratch: string, shownAs: string): Promise<void> {
  try {
    const { rows } = await admin.query<{ encoding: string; collate: string; ctype: string }>(
      'SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype FROM pg_database WHERE datname = current_database()',
    );
    const like = rows[0]!;
    const lit = (s: string) => admin.escapeLiteral(s);
    await admin.query(
      `CREATE DATABASE ${admin.escapeIdentifier(scratch)} TEMPLATE template0 ENCODING ${lit(like.encoding)} LC_COLLATE ${lit(like.collate)} LC_CTYPE ${lit(like.ctype)}`,
    );
  } catch (error) {
    const hint = (error as { code?: string }).code === '42501' ? ' (the check needs the CREATEDB privilege)' : '';
    throw new ScratchUnavailableError(`cannot create a scratch database on the server of ${shownAs}: ${describePgError(error)}${hint}`);
  }
}

async function dropLeftoverScratch(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ name: string }>(`SELECT datname AS name FROM pg_database WHERE datname LIKE '${SCRATCH_PREFIX}%'`);
  for (const { name } of rows) {
    const match = SCRATCH_NAME.exec(name);
    if (!match || match[1] !== HOST_TAG || !ownerGone(Number(match[2]), Number(match[3]))) continue;
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`).catch(() => undefined);
  }
}
