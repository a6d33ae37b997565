/**
 * What the sidecar's PostgreSQL role must be allowed to fence and promote a
 * database, decided from what the server says about the role (plain data in,
 * a refusal in words out), before anything is changed.
 */

/** The role as the database to fence sees it. */
export interface FencePrivileges {
  role: string;
  superuser: boolean;
  /** A member of the database's owning role: ALTER DATABASE … SET needs it (or superuser). */
  ownsDatabase: boolean;
  /** Sees which sessions are PostgreSQL's own workers (pg_read_all_stats): without it, an autovacuum worker looks like a superuser's session. */
  seesSessionKinds: boolean;
  /** Roles with sessions on the database that this role may not end (pg_terminate_backend). */
  unsignalable: Array<{ role: string; superuser: boolean }>;
}

/** The role as the database to promote sees it. */
export interface PromotePrivileges {
  role: string;
  superuser: boolean;
  ownsDatabase: boolean;
  inRecovery: boolean;
  /** EXECUTE on pg_promote (superusers, or an explicit GRANT). */
  canPromote: boolean;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Why `role` may not fence `database`, or undefined when it may. */
export function fenceRefusal(database: string, p: FencePrivileges): string | undefined {
  if (p.superuser) return undefined;
  const missing: string[] = [];
  if (!p.ownsDatabase) missing.push(`making it read-only (ALTER DATABASE) needs its owner or a superuser: ALTER DATABASE ${quote(database)} OWNER TO ${quote(p.role)}`);
  const supers = p.unsignalable.filter((s) => s.superuser).map((s) => s.role);
  const others = p.unsignalable.filter((s) => !s.superuser).map((s) => s.role);
  if (others.length > 0) missing.push(`ending the sessions of ${others.map(quote).join(', ')} needs GRANT pg_signal_backend TO ${quote(p.role)}`);
  if (supers.length > 0) {
    const hint = p.seesSessionKinds ? '' : ` (if they are PostgreSQL's own workers, such as autovacuum, GRANT pg_read_all_stats TO ${quote(p.role)} lets the sidecar tell)`;
    missing.push(`the sessions of the superuser ${supers.length > 1 ? 'roles' : 'role'} ${supers.map(quote).join(', ')} can only be ended by a superuser${hint}`);
  }
  return missing.length > 0 ? `role ${quote(p.role)} may not fence ${database}: ${missing.join('; ')}` : undefined;
}

/** Why `role` may not make `database` the primary, or undefined when it may. */
export function promoteRefusal(database: string, p: PromotePrivileges): string | undefined {
  if (p.superuser) return undefined;
  const missing: string[] = [];
  if (p.inRecovery && !p.canPromote) missing.push('promoting the standby needs a superuser or GRANT EXECUTE ON FUNCTION pg_promote TO ' + quote(p.role));
  // The fence of the old primary reaches a standby through the WAL; the new primary's copy of it must be lifted.
  if (!p.ownsDatabase) missing.push(`lifting its read-only setting (ALTER DATABASE … RESET) needs its owner or a superuser: ALTER DATABASE ${quote(database)} OWNER TO ${quote(p.role)}`);
  return missing.length > 0 ? `role ${quote(p.role)} may not make ${database} the primary: ${missing.join('; ')}` : undefined;
}
