import type { EngineKind } from '../engines/engine.js';
import type { FailoverTrigger } from '../state/store.js';

/** What the decision about the primary being replaced needs to know. */
export interface FormerPrimaryInput {
  trigger: FailoverTrigger;
  /** The old primary answered its probe when the switch began (a switchover, not the failover of a dead primary). */
  primaryWasUp: boolean;
  /** The sync outcome: the new primary holds every write the old one acknowledged (fenced, then caught up). */
  syncComplete: boolean;
  /** The engine keeps secondaries up to date by itself (SQLite: WAL shipping, whole copies). */
  keptWarm: boolean;
}

export type FormerPrimaryFate =
  /** Lossless, and the sidecar keeps it up to date: a secondary like any other, a candidate. */
  | { demote: false; because: 'kept-warm' }
  /** May hold writes of the lost window: nothing is copied over it, never chosen until reinstated. */
  | { demote: true; because: 'lossy' }
  /** Lossless, but nothing keeps it up to date (a PostgreSQL server that is no longer a standby). */
  | { demote: true; because: 'not-kept-warm' };

/**
 * Demote the old primary? Only a lossless switchover leaves it holding
 * nothing the new primary lacks; an automatic failover replaced a primary
 * judged dead, whatever a last copy managed. A lossless one is kept as a
 * candidate only where the engine brings it up to date from now on; otherwise
 * it would fall behind unseen, so it waits, demoted, for an operator.
 */
export function formerPrimaryFate(input: FormerPrimaryInput): FormerPrimaryFate {
  const lossless = input.trigger !== 'auto' && input.primaryWasUp && input.syncComplete;
  if (!lossless) return { demote: true, because: 'lossy' };
  return input.keptWarm ? { demote: false, because: 'kept-warm' } : { demote: true, because: 'not-kept-warm' };
}

/**
 * One sentence for the failover output, the history and `status`: what became
 * of the former primary `name`, and what an operator must do about it.
 */
export function formerPrimaryNote(name: string, engine: EngineKind, primary: string | undefined, because: FormerPrimaryFate['because']): string {
  const upstream = primary ?? 'the new primary';
  if (because === 'kept-warm') return `${name} stays a failover candidate: WAL shipping keeps it up to date from ${upstream}`;
  if (because === 'not-kept-warm' && engine === 'postgresql') {
    return (
      `${name} is demoted: it is read-only and no longer a standby, so nothing keeps it up to date. ` +
      `Rebuild it as a standby of ${upstream} (pg_rewind, or pg_basebackup into an empty data directory, with primary_conninfo pointing at ${upstream}), ` +
      `then run \`disaster-recovery reinstate ${name}\`; or fail back to it with \`disaster-recovery failover ${name}\` (it is brought up to date by pg_dump | pg_restore first)`
    );
  }
  if (because === 'not-kept-warm') return `${name} is demoted: nothing keeps it up to date; bring it up to date, then run \`disaster-recovery reinstate ${name}\``;
  return (
    `${name} is demoted: it may hold writes the new primary lacks (the switch was not lossless), so nothing is copied over it and it is never chosen automatically. ` +
    `Recover what it holds, then run \`disaster-recovery reinstate ${name}\`${engine === 'postgresql' ? ' once it is rebuilt as a standby' : ' (a whole copy then overwrites it, and WAL shipping follows)'}`
  );
}

/**
 * What `status` says of a database in the demoted set (the store keeps names
 * only). A demoted SQLite database was left by a switch that was not lossless;
 * a PostgreSQL one may have been either way, so the history is named.
 */
export function demotedNote(name: string, engine: EngineKind, primary: string | undefined): string {
  if (engine === 'sqlite') return formerPrimaryNote(name, engine, primary, 'lossy');
  return `${formerPrimaryNote(name, engine, primary, 'not-kept-warm')}. If \`history\` says the switch away from it was not lossless, recover the writes it may hold first`;
}
