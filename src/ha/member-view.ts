import type { DatabaseHealth } from '../monitor/health.js';
import type { MemberRecord, MemberView } from '../state/store.js';
import type { PrimarySighting } from './quorum.js';

/** One database as a member sees it (snake_case: it is shown as is by status and /api/status). */
export interface DatabaseSighting {
  status: 'unknown' | 'up' | 'down';
  last_error: string | null;
  response_time_seconds: number | null;
  lag_seconds: number | null;
  consecutive_failures: number;
}

/** What a sidecar publishes of itself: whether it leads, and its probes of each database it reaches. */
export interface SidecarView {
  leader: boolean;
  /** A sidecar stopping says so, so that it no longer counts as alive before its record expires. */
  stopped?: boolean;
  databases: Record<string, DatabaseSighting>;
}

export function sidecarView(leader: boolean, healths: DatabaseHealth[], lagSeconds: (name: string) => number | undefined): SidecarView {
  const databases: Record<string, DatabaseSighting> = {};
  for (const h of healths) {
    databases[h.name] = {
      status: h.status,
      last_error: h.lastError ?? null,
      response_time_seconds: h.last ? h.last.responseTimeSeconds : null,
      lag_seconds: lagSeconds(h.name) ?? h.last?.replicationLagSeconds ?? null,
      consecutive_failures: h.consecutiveFailures,
    };
  }
  return { leader, databases };
}

/** What makes a view worth publishing before the next heartbeat: leadership or a database going up or down. */
export function viewSignature(view: SidecarView): string {
  return JSON.stringify([view.leader, Object.entries(view.databases).map(([name, d]) => `${name}:${d.status}`)]);
}

/** A member's view of one database, from its published record; unknown when it says nothing of it. */
export function sightingOf(view: MemberView, database: string): PrimarySighting {
  const d = (view as Partial<SidecarView>).databases?.[database];
  return d?.status === 'down' ? 'down' : d?.status === 'up' ? 'up' : 'unknown';
}

/** Members that count as alive: published and not expired, and not saying they stopped. */
export function liveMembers(members: MemberRecord[]): MemberRecord[] {
  return members.filter((m) => (m.view as Partial<SidecarView>).stopped !== true);
}
