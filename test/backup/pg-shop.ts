/**
 * A PostgreSQL database with several tables for the backup tests: two
 * schemas, foreign keys, sequences, a view, jsonb, bytea and a large object,
 * owned by a login role with a password (so the tools must get it from the
 * environment); and a fingerprint of everything in it, to compare servers.
 */
import pg from 'pg';
import type { PgServer } from '../support/postgres.js';

export const APP_USER = 'app';
export const APP_PASSWORD = 'pw with spaces & s3cret!';

const SCHEMA = `
CREATE TABLE images (id bigserial PRIMARY KEY, url text NOT NULL UNIQUE, sha256 text, width int, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE image_tags (image_id bigint REFERENCES images(id) ON DELETE CASCADE, tag_id int REFERENCES tags(id), PRIMARY KEY (image_id, tag_id));
CREATE SCHEMA audit;
CREATE TABLE audit.events (id serial PRIMARY KEY, at timestamptz NOT NULL, payload jsonb, blob bytea);
CREATE VIEW big_images AS SELECT id, url FROM images WHERE width > 1000;
INSERT INTO images (url, sha256, width) SELECT 'https://img.example/' || g, md5(g::text), 200 + g % 2000 FROM generate_series(1, $IMAGES) g;
INSERT INTO tags (name) SELECT 'tag' || g FROM generate_series(1, 50) g;
INSERT INTO image_tags SELECT i, 1 + (i % 50) FROM generate_series(1, $IMAGES) i;
INSERT INTO image_tags SELECT i, 1 + ((i + 7) % 50) FROM generate_series(1, $IMAGES, 3) i;
INSERT INTO audit.events (at, payload, blob) SELECT now() - g * interval '1 minute', jsonb_build_object('n', g, 'tags', array[g, g + 1]), decode(md5(g::text), 'hex') FROM generate_series(1, 1000) g;
SELECT lo_from_bytea(0, 'a large object: crawler settings');`;

export function appUrl(server: PgServer, database: string): string {
  return server.url({ database, user: APP_USER, password: APP_PASSWORD });
}

/** The role `app` (password, CREATEDB), once per server. */
export async function createAppRole(server: PgServer): Promise<void> {
  await server.createUser(APP_USER, APP_PASSWORD);
  await server.query(`ALTER ROLE ${APP_USER} CREATEDB`);
}

export async function asApp(server: PgServer, database: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: appUrl(server, database) });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A new database owned by `app` holding the tables above, with `images` rows. */
export async function createShop(server: PgServer, database: string, images = 5000): Promise<void> {
  await server.query(`CREATE DATABASE ${database} OWNER ${APP_USER}`);
  await asApp(server, database, SCHEMA.replaceAll('$IMAGES', String(images)));
}

/**
 * Everything a restore must bring back, as one comparable object: rows (a hash
 * of each table's sorted rows), sequence positions, views, large objects.
 */
export async function fingerprint(server: PgServer, database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const tables = await server.query<{ name: string }>(
    "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    [],
    database,
  );
  for (const { name } of tables) {
    const [row] = await server.query<{ n: string; h: string }>(`SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM ${name} t`, [], database);
    out[name] = `${row!.n} rows, ${row!.h}`;
  }
  const sequences = await server.query<{ name: string; last: string | null }>('SELECT schemaname || \'.\' || sequencename AS name, last_value::text AS last FROM pg_sequences ORDER BY 1', [], database);
  for (const s of sequences) out[`sequence ${s.name}`] = String(s.last);
  const views = await server.query<{ name: string; def: string }>("SELECT viewname AS name, definition AS def FROM pg_views WHERE schemaname = 'public' ORDER BY 1", [], database);
  for (const v of views) out[`view ${v.name}`] = v.def;
  const objects = await server.query<{ data: string }>("SELECT encode(lo_get(oid), 'escape') AS data FROM pg_largeobject_metadata ORDER BY oid", [], database);
  out['large objects'] = objects.map((o) => o.data).join('|');
  return out;
}

/** Rows per table as the backup manifest keys them. */
export async function rowCounts(server: PgServer, database: string): Promise<Record<string, number>> {
  const fp = await fingerprint(server, database);
  return Object.fromEntries(
    Object.entries(fp)
      .filter(([k]) => !k.includes(' '))
      .map(([k, v]) => [k, Number(v.split(' ')[0])]),
  );
}
