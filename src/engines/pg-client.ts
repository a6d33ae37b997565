import pg from 'pg';
import type { DatabaseTarget } from '../config/database-url.js';

export type PgTarget = Extract<DatabaseTarget, { engine: 'postgresql' }>;

/** Runs `fn` on a short-lived connection that is always closed. */
export async function withClient<T>(target: PgTarget, timeoutMs: number, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  // No statement of the sidecar's own may hang a fence or a promotion for ever (a lock, a lost synchronous standby).
  const client = new pg.Client({ connectionString: target.connectionString, connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs, application_name: 'dr-sidecar' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds; throws `timed out …` after `timeoutMs`. */
export async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(20);
  }
}

/** A quoted SQL identifier ("image_crawler_primary"), for statements that take no parameters (ALTER DATABASE). */
export function pgIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
