import path from 'node:path';

/** Where a database lives, parsed from a SQLAlchemy-style URL. */
export type DatabaseTarget =
  | { engine: 'sqlite'; file: string }
  | {
      engine: 'postgresql';
      /** The URL the driver gets: may hold a password, never shown. */
      connectionString: string;
      host: string;
      port: number;
      database: string;
      user: string;
      password: string | undefined;
    };

export class DatabaseUrlError extends Error {}

/**
 * Reads a database URL the way SQLAlchemy does:
 * `sqlite:///data/x.db` is relative to `cwd`, `sqlite:////var/lib/x.db` is absolute,
 * `postgresql[+driver]://user:password@host:port/dbname` is PostgreSQL.
 */
export function parseDatabaseUrl(url: string, cwd: string = process.cwd()): DatabaseTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) throw new DatabaseUrlError('expected a URL such as sqlite:///data/x.db or postgresql://user@host:5432/db');
  const dialect = scheme.split('+')[0];
  if (dialect === 'sqlite') return parseSqlite(url, cwd);
  if (dialect === 'postgresql' || dialect === 'postgres') return parsePostgres(url, scheme);
  throw new DatabaseUrlError(`unsupported database scheme "${scheme}" (expected sqlite or postgresql)`);
}

function parseSqlite(url: string, cwd: string): DatabaseTarget {
  const rest = url.replace(/^[^:]+:\/\//, '');
  if (!rest.startsWith('/')) {
    throw new DatabaseUrlError('a SQLite URL needs three slashes: sqlite:///relative/path.db or sqlite:////absolute/path.db');
  }
  const filePart = decodeURIComponent(rest.slice(1).split('?')[0] ?? '');
  if (filePart === '' || filePart === ':memory:') {
    throw new DatabaseUrlError('an in-memory SQLite database cannot be monitored or backed up; give a file path');
  }
  return { engine: 'sqlite', file: path.isAbsolute(filePart) ? filePart : path.resolve(cwd, filePart) };
}

function parsePostgres(url: string, scheme: string): DatabaseTarget {
  let parsed: URL;
  try {
    // WHATWG URL only knows the special schemes' rules; any scheme parses the authority the same way.
    parsed = new URL(url.replace(/^[^:]+:/, 'postgresql:'));
  } catch {
    throw new DatabaseUrlError(`not a valid ${scheme} URL`);
  }
  if (!parsed.hostname) throw new DatabaseUrlError('a PostgreSQL URL needs a host: postgresql://user@host:5432/dbname');
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) throw new DatabaseUrlError('a PostgreSQL URL needs a database name: postgresql://user@host:5432/dbname');
  const port = parsed.port ? Number(parsed.port) : 5432;
  // libpq and pg also take the password as a query parameter.
  const password = parsed.password ? decodeURIComponent(parsed.password) : (parsed.searchParams.get('password') ?? undefined);
  return {
    engine: 'postgresql',
    connectionString: parsed.toString(),
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port,
    database,
    user: decodeURIComponent(parsed.username) || 'postgres',
    password,
  };
}

/**
 * The URL as it may be shown anywhere: the password (in the credentials, or as
 * a `password=`/`sslpassword=` query parameter) replaced by `***`. The
 * authority is split as the parser splits it (up to the first "/", "?" or "#";
 * credentials up to its last "@").
 */
export function maskDatabaseUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  const [, scheme, authority, tail] = m as unknown as [string, string, string, string];
  const rest = tail.replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1***');
  const at = authority.lastIndexOf('@');
  const colon = authority.slice(0, Math.max(at, 0)).indexOf(':');
  if (at < 0 || colon < 0) return `${scheme}${authority}${rest}`;
  return `${scheme}${authority.slice(0, colon)}:***${authority.slice(at)}${rest}`;
}
