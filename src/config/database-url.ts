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
 * decodeURIComponent with a message naming the part of the URL: its own
 * `URIError: URI malformed` says neither where nor what to do. A password is
 * never quoted back.
 */
function decodePart(text: string, part: string, secret = false): string {
  try {
    return decodeURIComponent(text);
  } catch {
    const shown = secret ? '' : ` "${text}"`;
    throw new DatabaseUrlError(`the ${part}${shown} holds a "%" that does not start a percent escape (%XX); write a literal "%" as %25`);
  }
}

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
  const filePart = decodePart(rest.slice(1).split('?')[0] ?? '', 'file path');
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
  const database = decodePart(parsed.pathname.replace(/^\//, ''), 'database name');
  if (!database) throw new DatabaseUrlError('a PostgreSQL URL needs a database name: postgresql://user@host:5432/dbname');
  const port = parsed.port ? Number(parsed.port) : 5432;
  // libpq and pg also take the password as a query parameter.
  const password = parsed.password ? decodePart(parsed.password, 'password', true) : (parsed.searchParams.get('password') ?? undefined);
  return {
    engine: 'postgresql',
    connectionString: parsed.toString(),
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port,
    database,
    user: decodePart(parsed.username, 'user name') || 'postgres',
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
