import type { EngineKind } from '../engines/engine.js';

/** What the choice needs to know of one configured database. */
export interface CandidateInput {
  name: string;
  enabled: boolean;
  priority: number;
  engine: EngineKind;
  /** From its latest probe. */
  up: boolean;
  /** Seconds behind the primary, when known (PostgreSQL replay lag, SQLite time since last copy). */
  lagSeconds: number | undefined;
}

export interface CandidateRules {
  /** The primary being replaced: never its own successor. */
  from: string | undefined;
  fromEngine: EngineKind | undefined;
  /** Former primaries, not chosen automatically until reinstated. */
  demoted: readonly string[];
  /** Skip candidates further behind than this (seconds); undefined: no limit. */
  maxLagSeconds: number | undefined;
}

export type Choice =
  | { kind: 'chosen'; target: string; lagSeconds: number | undefined; passedOver: Rejection[] }
  | { kind: 'none'; passedOver: Rejection[] };

export interface Rejection {
  name: string;
  why: string;
}

/**
 * The healthy secondary with the best priority (lowest number, as the guide's
 * priorities read) that is enabled, not demoted, of the same engine, and not
 * further behind than allowed. Every database passed over says why.
 */
export function chooseCandidate(databases: readonly CandidateInput[], rules: CandidateRules): Choice {
  const passedOver: Rejection[] = [];
  const ordered = [...databases].sort((a, b) => a.priority - b.priority);
  for (const db of ordered) {
    if (db.name === rules.from) continue;
    const why = rejection(db, rules);
    if (why) {
      passedOver.push({ name: db.name, why });
      continue;
    }
    return { kind: 'chosen', target: db.name, lagSeconds: db.lagSeconds, passedOver };
  }
  return { kind: 'none', passedOver };
}

function rejection(db: CandidateInput, rules: CandidateRules): string | undefined {
  if (!db.enabled) return 'disabled';
  if (rules.demoted.includes(db.name)) return 'demoted (a former primary; reinstate it or fail over to it by hand)';
  if (rules.fromEngine && db.engine !== rules.fromEngine) return `engine ${db.engine} differs from the primary's ${rules.fromEngine}`;
  if (!db.up) return 'down';
  if (rules.maxLagSeconds !== undefined && db.lagSeconds !== undefined && db.lagSeconds > rules.maxLagSeconds) {
    return `lags ${db.lagSeconds.toFixed(1)} s, more than max_lag_on_failover ${rules.maxLagSeconds} s`;
  }
  return undefined;
}

export function describeRejections(passedOver: readonly Rejection[]): string {
  return passedOver.length === 0 ? 'no secondary is configured' : passedOver.map((r) => `${r.name}: ${r.why}`).join('; ');
}
