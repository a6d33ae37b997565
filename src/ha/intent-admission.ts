/**
 * Which intents the leader carries out. An intent is done once, by the leader
 * that claims it, and only while its submitter may still be waiting: one older
 * than the submitter's wait is refused, so a late leader never acts on a request
 * whose asker was already told that nobody took it.
 */
export const INTENT_KINDS = ['failover', 'auto_failover', 'reinstate', 'backup', 'drill', 'accept_file'] as const;
export type IntentKind = (typeof INTENT_KINDS)[number];

export interface IntentAdmissionInput {
  kind: string;
  params: Record<string, unknown>;
  submittedAt: number;
  now: number;
  /** How long a submitter waits for a leader to claim its intent. */
  claimWaitMs: number;
}

export type IntentAdmission = { admit: true; kind: IntentKind } | { admit: false; why: string };

export function admitIntent(input: IntentAdmissionInput): IntentAdmission {
  if (!(INTENT_KINDS as readonly string[]).includes(input.kind)) {
    return { admit: false, why: `unknown intent "${input.kind}" (this sidecar knows ${INTENT_KINDS.join(', ')}); a newer version may have sent it` };
  }
  const age = input.now - input.submittedAt;
  if (age > input.claimWaitMs) {
    return { admit: false, why: `claimed ${(age / 1000).toFixed(1)} s after it was submitted, later than its submitter waits (${input.claimWaitMs / 1000} s); not done` };
  }
  const p = input.params;
  const bad = (key: string, expected: string): IntentAdmission => ({ admit: false, why: `intent ${input.kind}: params.${key}: expected ${expected}` });
  switch (input.kind as IntentKind) {
    case 'failover':
      if (p.target !== undefined && typeof p.target !== 'string') return bad('target', 'a database name');
      if (typeof p.reason !== 'string') return bad('reason', 'a string');
      if (p.trigger !== 'manual' && p.trigger !== 'alert') return bad('trigger', '"manual" or "alert"');
      break;
    case 'auto_failover':
      if (typeof p.enabled !== 'boolean') return bad('enabled', 'true or false');
      break;
    case 'reinstate':
    case 'accept_file':
      if (typeof p.name !== 'string') return bad('name', 'a database name');
      break;
    case 'backup':
      break;
    case 'drill':
      if (!Array.isArray(p.kinds) || !p.kinds.every((k) => k === 'switchover' || k === 'restore')) return bad('kinds', 'a list of "switchover", "restore"');
      if (p.database !== undefined && typeof p.database !== 'string') return bad('database', 'a database name');
      break;
  }
  return { admit: true, kind: input.kind as IntentKind };
}
