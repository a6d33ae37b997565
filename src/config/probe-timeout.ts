import type { AlertRule } from './schema.js';

/** The probe timeout of a config without response_time rules (and the least one gets). */
export const BASE_PROBE_TIMEOUT_SECONDS = 5;
/** Room the default leaves above the largest response_time threshold. */
export const PROBE_TIMEOUT_ROOM_SECONDS = 5;

const RULES_PATH = 'disaster_recovery.monitoring.alert_rules';

/**
 * Enabled response_time rules that fire on a slow answer. A probe slower than
 * probe_timeout is a failure (the database is down), and the generated rules
 * require dr_database_up == 1, so such a rule needs probes slower than its
 * threshold to still count as answers.
 */
function slowAnswerRules(rules: Record<string, AlertRule>): Array<[string, AlertRule]> {
  return Object.entries(rules).filter(([, r]) => r.enabled && r.metric === 'response_time' && (r.operator === '>' || r.operator === '>=' || r.operator === '=='));
}

/**
 * probe_timeout when the config sets none: the largest threshold of those rules
 * plus PROBE_TIMEOUT_ROOM_SECONDS, and at least BASE_PROBE_TIMEOUT_SECONDS
 * (the guide's 5 s and 10 s rules: 15 s).
 */
export function defaultProbeTimeout(rules: Record<string, AlertRule>): number {
  const largestMs = Math.max(0, ...slowAnswerRules(rules).map(([, r]) => r.threshold));
  return Math.max(BASE_PROBE_TIMEOUT_SECONDS, largestMs / 1000 + PROBE_TIMEOUT_ROOM_SECONDS);
}

/** An explicit probe_timeout at or below the threshold of such a rule makes the rule dead: one problem per rule. */
export function probeTimeoutProblems(probeTimeoutSeconds: number, rules: Record<string, AlertRule>): string[] {
  return slowAnswerRules(rules)
    .filter(([, r]) => probeTimeoutSeconds * 1000 <= r.threshold)
    .map(
      ([name, r]) =>
        `disaster_recovery.monitoring.probe_timeout: ${probeTimeoutSeconds} s leaves no room above ${RULES_PATH}.${name}.threshold (${r.threshold} ms): ` +
        `a probe that slow counts as a failure, so the rule could never fire; set probe_timeout above ${r.threshold / 1000} s, ` +
        `or leave it out (the default for these rules is ${defaultProbeTimeout(rules)} s)`,
    );
}
