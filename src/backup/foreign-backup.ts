/**
 * A backup made elsewhere, without the sidecar's manifest (the guide's
 * `restore backups/backup_20231201.sql.gz`): a PostgreSQL plain SQL dump, a
 * pg_dump custom archive, or a SQLite database file, each maybe gzipped. Its
 * kind is read from its first bytes, not trusted from its name. Restored only
 * when the operator says so (`--no-manifest`): there is no checksum to check
 * and no row counts to compare, so the rows found afterwards are reported.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import type { DatabaseConfig } from '../config/load.js';
import { DrError, InputError } from '../errors.js';
import { fsError } from './backup-file.js';
import type { TableCounts } from './engine-backup.js';
import { postgresBackup } from './postgres-backup.js';
import { dbnameConninfo, startPgTool, toolReason, type PgTarget } from './pg-process.js';
import { connectPg, countRows, describePgError, pgTargetOf } from './pg-session.js';
import { countRows as sqliteCounts, sqliteBackup } from './sqlite-backup.js';

export const FOREIGN_FORMATS = {
  'postgresql-plain': { engine: 'postgresql', shown: 'PostgreSQL plain SQL dump (psql)' },
  'postgresql-custom': { engine: 'postgresql', shown: 'pg_dump custom archive (pg_restore)' },
  'sqlite-database': { engine: 'sqlite', shown: 'SQLite database file' },
} as const;

export type ForeignFormat = keyof typeof FOREIGN_FORMATS;

export interface ForeignBackup {
  format: ForeignFormat;
  engine: 'sqlite' | 'postgresql';
  compressed: boolean;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const PGDUMP_MAGIC = Buffer.from('PGDMP', 'latin1');
const SNIFF_BYTES = 64 * 1024;

/** What `file` holds, from its first bytes (decompressed when gzipped); a plain SQL dump by its name (`.sql`, `.sql.gz`). */
export function identifyForeignBackup(file: string): ForeignBackup {
  const head = readHead(file);
  const compressed = head.subarray(0, 2).equals(GZIP_MAGIC);
  const content = compressed ? gunzipPrefix(head, file) : head;
  const format: ForeignFormat | undefined = content.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)
    ? 'sqlite-database'
    : content.subarray(0, PGDUMP_MAGIC.length).equals(PGDUMP_MAGIC)
      ? 'postgresql-custom'
      : /\.sql(\.gz)?$/i.test(file)
        ? 'postgresql-plain'
        : undefined;
  if (!format) {
    throw new InputError(
      `cannot tell what ${file} holds: it is not a SQLite database, not a pg_dump custom archive, and not named .sql or .sql.gz (a plain SQL dump)`,
    );
  }
  return { format, engine: FOREIGN_FORMATS[format].engine, compressed };
}

function readHead(file: string): Buffer {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buffer = Buffer.alloc(SNIFF_BYTES);
    return buffer.subarray(0, fs.readSync(fd, buffer, 0, SNIFF_BYTES, 0));
  } catch (error) {
    throw fsError(error, `reading ${file}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The start of a gzip stream's content, from the start of the stream (the rest is not needed to tell the kind). */
function gunzipPrefix(head: Buffer, file: string): Buffer {
  try {
    return zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch (error) {
    throw new InputError(`${file} starts as gzip but is not a valid gzip stream: ${(error as Error).message}`);
  }
}

/** Restores `content` (uncompressed) over `target`: all of it or nothing. */
export async function restoreForeign(target: DatabaseConfig, backup: ForeignBackup, content: Readable): Promise<void> {
  if (backup.format === 'sqlite-database') return sqliteBackup.restore(target, content);
  if (backup.format === 'postgresql-custom') return postgresBackup.restore(target, content);
  return runPlainSql(pgTargetOf(target), content, `restore into ${target.name}`);
}

/**
 * Runs a plain SQL dump through psql in one transaction that only a complete
 * input commits. `--single-transaction` would COMMIT at the end of psql's
 * input whatever that input was, and a restoring process killed half-way ends
 * that input early: so BEGIN comes from `-c`, and COMMIT only after the last
 * byte of the file, through the same stdin. A stdin that ends before it
 * leaves psql to exit inside the transaction, which the server rolls back.
 * The marker echoed after COMMIT proves the COMMIT ran.
 */
async function runPlainSql(target: PgTarget, content: Readable, what: string): Promise<void> {
  const marker = `dr-sidecar restore committed ${randomBytes(8).toString('hex')}`;
  const args = ['--no-psqlrc', '--quiet', '--no-password', '--set=ON_ERROR_STOP=1', `--dbname=${dbnameConninfo(target.database)}`, '--command=BEGIN', '--file=-'];
  const run = startPgTool('psql', args, target, { stdin: 'pipe', stdout: 'pipe' });
  let stdout = '';
  run.child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout = (stdout + text).slice(-4096)));
  const stdin = run.child.stdin!;
  stdin.on('error', () => undefined); // EPIPE when psql stops at an error: its exit code says why
  const fed = feed(content, stdin, `\n;\nCOMMIT;\n\\echo '${marker}'\n`).catch((error: unknown) => {
    // Stop psql before its input could end: an unfinished transaction is rolled back.
    run.child.kill('SIGKILL');
    return error;
  });
  const [code, fedError] = await Promise.all([run.exited, fed]);
  // psql gone (it stopped at an error): its stdin refuses writes (EPIPE, or a destroyed stream); its exit code says why.
  if (fedError && !(fedError instanceof InputClosed)) {
    throw new DrError(`${what} was stopped and rolled back: ${fsError(fedError, 'reading the backup').message}`);
  }
  if (code !== 0) throw new DrError(`${what} failed and was rolled back: ${toolReason(run.stderr())}`);
  if (!stdout.includes(marker)) throw new DrError(`${what} did not reach its COMMIT and was rolled back: ${toolReason(run.stderr())}`);
}

/** A write to the tool's stdin failed: the tool is gone, not the backup unreadable. */
class InputClosed extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

/** Writes all of `content`, then `trailer`, then ends `stdin`; on an error of `content`, stdin is never ended. */
async function feed(content: Readable, stdin: NodeJS.WritableStream, trailer: string): Promise<void> {
  const write = (chunk: Buffer | string) =>
    new Promise<void>((resolve, reject) => {
      stdin.write(chunk, (error) => (error ? reject(new InputClosed(error)) : resolve()));
    });
  for await (const chunk of content as AsyncIterable<Buffer>) await write(chunk);
  await write(trailer);
  stdin.end();
}

/** What the restored database holds, read back: the check a backup without a manifest gets after its restore. */
export async function inspectRestored(target: DatabaseConfig): Promise<{ tables: TableCounts; detail: string }> {
  if (target.target.engine === 'sqlite') {
    const db = new Database(target.target.file, { readonly: true, fileMustExist: true });
    try {
      const problems = (db.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check);
      if (problems.length !== 1 || problems[0] !== 'ok') throw new DrError(`quick_check of the restored ${target.name} failed: ${problems.slice(0, 3).join('; ')}`);
      return { tables: sqliteCounts(db), detail: 'quick_check ok' };
    } finally {
      db.close();
    }
  }
  const client = await connectPg(pgTargetOf(target), `${target.name} (${target.displayUrl})`);
  try {
    return { tables: await countRows(client), detail: 'tables readable' };
  } catch (error) {
    throw new DrError(`reading the restored ${target.name} failed: ${describePgError(error)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
