/**
 * The drill's own writer: a loop of small transactions through the library's
 * withSession, as an application's would go, so the outage it measures is the
 * one applications see (fence, catch-up, promotion, and the time the library
 * takes to follow the new primary). It writes no row: on SQLite an empty
 * BEGIN IMMEDIATE transaction takes the write lock a real write needs; on
 * PostgreSQL the transaction checks that the server takes writes (not a
 * standby, not read-only as a fence leaves it, failing as a write would), then
 * takes a transaction id, so its COMMIT is a real commit record that waits for
 * a synchronous standby as the application's commits do.
 */
import type { Session } from '../session.js';

export type SessionRunner = <T>(fn: (session: Session) => Promise<T> | T) => Promise<T>;

export interface ProbeCommit {
  /** performance.now() when withSession returned. */
  at: number;
  database: string;
}

/** A write refused as a write to a read-only PostgreSQL server is (SQLSTATE 25006): the library waits for the switch. */
class WouldBeRefused extends Error {
  readonly code = '25006';
}

async function probeTransaction(session: Session): Promise<string> {
  if (session.engine === 'postgresql') {
    const { rows } = await session.client.query<{ standby: boolean; read_only: string }>(
      "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only",
    );
    const row = rows[0]!;
    if (row.standby || row.read_only === 'on') throw new WouldBeRefused(`${session.database} would refuse a write (${row.standby ? 'a standby' : 'read-only'})`);
    await session.client.query('SELECT txid_current()');
  }
  return session.database;
}

export class WriteProbe {
  readonly commits: ProbeCommit[] = [];
  failures = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly withSession: SessionRunner,
    private readonly paceMs = 5,
  ) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  /** Stops after the transaction under way, waiting at most `timeoutMs` for it (a session may be waiting for a switch). */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Commits on `database` after `since` (performance.now()). */
  commitsOn(database: string, since = 0): number {
    return this.commits.filter((c) => c.database === database && c.at >= since).length;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const database = await this.withSession(probeTransaction);
        this.commits.push({ at: performance.now(), database });
      } catch {
        this.failures++;
        if (!this.stopped) await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, this.paceMs));
    }
  }
}

/**
 * The write outage of one switch from `from` to `to`, as the probe saw it: from
 * the last commit on `from` to the first commit on `to` after it (seconds).
 * Undefined when the probe never committed on one side.
 */
export function switchOutage(commits: readonly ProbeCommit[], from: string, to: string, since: number): number | undefined {
  const firstOnTo = commits.findIndex((c) => c.at >= since && c.database === to);
  if (firstOnTo < 0) return undefined;
  let lastOnFrom: ProbeCommit | undefined;
  for (let i = firstOnTo - 1; i >= 0; i--) {
    if (commits[i]!.database === from) {
      lastOnFrom = commits[i];
      break;
    }
  }
  if (!lastOnFrom) return undefined;
  return (commits[firstOnTo]!.at - lastOnFrom.at) / 1000;
}
