/**
 * Partition-safe failover: the leader replaces the primary only when the sidecars
 * that are alive agree, by a majority of their views, that it is unreachable. A
 * leader cut off from the primary while the others still reach it does not fail over.
 */

/** What one live member says of the primary: its last probe failed, answered, or it has not probed it. */
export type PrimarySighting = 'down' | 'up' | 'unknown';

export interface QuorumInput {
  /** The leader's own view (from its monitor, always fresh). */
  self: { member: string; sees: PrimarySighting };
  /** The other live members' published views (expired members are not here). */
  others: Array<{ member: string; sees: PrimarySighting }>;
}

export interface QuorumDecision {
  agreed: boolean;
  down: number;
  alive: number;
  why: string;
}

/** A strict majority of the live members (the leader included) must see the primary down; one member: itself. */
export function primaryDownByMajority(input: QuorumInput): QuorumDecision {
  const views = [input.self, ...input.others.filter((o) => o.member !== input.self.member)];
  const down = views.filter((v) => v.sees === 'down').length;
  const alive = views.length;
  const needed = Math.floor(alive / 2) + 1;
  const agreed = down >= needed;
  const dissent = views.filter((v) => v.sees !== 'down').map((v) => `${v.member} (${v.sees})`);
  const why = agreed
    ? `${down} of ${alive} live members see the primary down`
    : `only ${down} of ${alive} live members see the primary down (${needed} needed); not down for ${dissent.join(', ')}`;
  return { agreed, down, alive, why };
}
