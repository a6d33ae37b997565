import type { Config } from '../config/load.js';
import type { ProbeResult } from '../engines/engine.js';
import type { DatabaseHealth } from '../monitor/health.js';
import type { StateCopy } from '../state/state-copy.js';

export interface PrimaryAnswer {
  usable: boolean;
  body: { name: string | null; engine: string | null; url: string | null; status: string; epoch: number; problem?: string };
}

export interface PrimaryAnswerDeps {
  config: Config;
  state: StateCopy;
  /** A running sidecar answers from its watched copy; a command reads the state first. */
  running: boolean;
  /** Why this process cannot confirm the cluster state now (cut off from the store, its file lost), or undefined. */
  unconfirmed: string | undefined;
  health(name: string): DatabaseHealth | undefined;
  probeNow(name: string): Promise<DatabaseHealth | undefined>;
}

/** A database that answers but turns writes away: fenced (read-only by default), or a standby. */
function refusesWrites(probe: ProbeResult | undefined): boolean {
  return probe?.readOnly === true || probe?.inRecovery === true;
}

/** The current primary as `GET /primary` answers it: usable only when confirmed, up and taking writes. */
export async function answerPrimary(deps: PrimaryAnswerDeps): Promise<PrimaryAnswer> {
  const { config, state } = deps;
  if (!deps.running) await state.refresh();
  const name = state.primary();
  const db = config.topology.get(name);
  const body = (status: string) => ({ name: name ?? null, engine: db?.target.engine ?? null, url: db?.displayUrl ?? null, status, epoch: state.current().epoch });
  // Fail safe: a sidecar that cannot confirm the cluster state must not route writes to a primary that may have been replaced.
  if (deps.unconfirmed) return { usable: false, body: { ...body('unconfirmed'), problem: deps.unconfirmed } };
  let health = name ? deps.health(name) : undefined;
  // The last probe may predate a switch made by another process (a standby, read-only until
  // promoted): ask the database again before turning writers away.
  if (name && health?.status === 'up' && refusesWrites(health.last)) health = await deps.probeNow(name);
  const status = !name ? 'none' : health?.status === 'up' && refusesWrites(health.last) ? 'read-only' : (health?.status ?? 'unknown');
  return { usable: status === 'up', body: body(status) };
}
