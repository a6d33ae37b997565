import { stringify } from 'yaml';
import type { Config } from '../config/load.js';
import type { AlertRule } from '../config/schema.js';

/** One Prometheus alerting rule, as it goes into the rule file. */
export interface PrometheusRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export type AlertAction = 'failover' | 'backup' | 'none';

const METRIC_NAMES = {
  response_time: 'dr_database_response_time_seconds',
  connection_count: 'dr_database_connections',
  error_count: 'dr_database_errors_total',
} as const;

/** Default window for an error_count rule without a duration. */
const DEFAULT_ERROR_WINDOW_SECONDS = 300;

/** `response_time_warning` → `DrResponseTimeWarning`: alert names in Prometheus's usual style. */
export function alertName(ruleName: string): string {
  return 'Dr' + ruleName.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

/** The action a rule asks for: its `action` key, else failover for critical rules, else none. */
export function actionOf(rule: AlertRule): AlertAction {
  return rule.action ?? (rule.severity === 'critical' ? 'failover' : 'none');
}

const seconds = (s: number) => `${Math.max(1, Math.round(s))}s`;

/** Milliseconds as seconds for PromQL, without float noise (4.35 ms is 0.00435, not 0.004349999999999999). */
const msToSeconds = (ms: number) => Number((ms / 1000).toPrecision(12));

/**
 * A configured alert rule as PromQL, in the metric's base units: the guide's
 * response_time thresholds are milliseconds, the metric is seconds; an
 * error_count rule counts the increase over its `duration` window; elsewhere
 * `duration` is how long the condition must hold (`for:`).
 */
export function toPrometheusRule(name: string, rule: AlertRule): PrometheusRule {
  const metric = METRIC_NAMES[rule.metric];
  let expr: string;
  let holdFor: number | undefined = rule.duration;
  let what: string;
  let value = '{{ $value }}';
  if (rule.metric === 'response_time') {
    // A database that is down has no response time worth alerting on: dr_database_up covers it.
    expr = `${metric} ${rule.operator} ${msToSeconds(rule.threshold)} and on (database) dr_database_up == 1`;
    what = `response time ${rule.operator} ${rule.threshold} ms`;
    value = '{{ $value | humanizeDuration }}';
  } else if (rule.metric === 'error_count') {
    // duration 0 would be a window no scrape fits in: the rule would never fire.
    const window = rule.duration || DEFAULT_ERROR_WINDOW_SECONDS;
    expr = `increase(${metric}[${seconds(window)}]) ${rule.operator} ${rule.threshold}`;
    holdFor = undefined;
    what = `${rule.operator} ${rule.threshold} failed probes within ${seconds(window)}`;
  } else {
    expr = `${metric} ${rule.operator} ${rule.threshold}`;
    what = `connections ${rule.operator} ${rule.threshold}`;
  }
  return {
    alert: alertName(name),
    expr,
    ...(holdFor !== undefined && holdFor > 0 ? { for: seconds(holdFor) } : {}),
    labels: { severity: rule.severity, rule: name, dr_action: actionOf(rule) },
    annotations: {
      summary: `{{ $labels.database }}: ${what}`,
      description: `Rule ${name} of the disaster-recovery config: ${rule.metric} of database {{ $labels.database }} is ${value} (${what}${holdFor ? ` for ${seconds(holdFor)}` : ''}).`,
    },
  };
}

/** Rules the guide implies, whatever the config lists: primary down, backup too old, replication lag too high. */
export function builtInRules(config: Config): PrometheusRule[] {
  const { failover, backup } = config;
  const detection = Math.min(failover.health_check_interval, config.monitoring.check_interval) * failover.detection_threshold;
  const rules: PrometheusRule[] = [
    {
      alert: 'DrPrimaryDown',
      expr: 'dr_database_up == 0 and on (database) dr_database_is_primary == 1',
      for: seconds(detection),
      labels: { severity: 'critical', rule: 'primary_down', dr_action: 'failover' },
      annotations: {
        summary: 'Primary database {{ $labels.database }} is down',
        description: `The current primary {{ $labels.database }} has failed its probes for ${seconds(detection)}; the sidecar fails over when automatic failover is enabled.`,
      },
    },
    {
      alert: 'DrReplicationLagHigh',
      expr: `dr_replication_lag_seconds > ${failover.max_lag_on_failover ?? Math.max(60, failover.sync_interval * 2)}`,
      for: '1m',
      labels: { severity: 'warning', rule: 'replication_lag_high', dr_action: 'none' },
      annotations: {
        summary: 'Secondary {{ $labels.database }} is {{ $value | humanizeDuration }} behind',
        description: 'A failover to this secondary now would lose the writes of that window.',
      },
    },
  ];
  // Always present: the metric exists only while a PostgreSQL primary is archived, and an idle rule costs nothing.
  const slotBytes = Math.round(backup.archive.max_slot_wal_keep_mb * 1048576 * 0.8);
  rules.push({
    alert: 'DrArchiveSlotRetainedHigh',
    expr: `dr_archive_slot_retained_bytes > ${slotBytes}`,
    for: '5m',
    labels: { severity: 'warning', rule: 'archive_slot_retained_high', dr_action: 'none' },
    annotations: {
      summary: "The archive's replication slot makes {{ $labels.database }} keep {{ $value | humanize1024 }}B of WAL",
      description: `The sidecar's archive is not keeping up; at backup.archive.max_slot_wal_keep_mb (${backup.archive.max_slot_wal_keep_mb} MB) the slot is dropped and the archive has a gap.`,
    },
  });
  if (backup.enable_auto_backup) {
    const tooOld = backup.backup_interval * 2 + 60;
    rules.push({
      alert: 'DrBackupTooOld',
      expr: `time() - dr_backup_last_success_timestamp_seconds > ${tooOld}`,
      labels: { severity: 'warning', rule: 'backup_too_old', dr_action: 'backup' },
      annotations: {
        summary: 'No good backup of {{ $labels.database }} for {{ $value | humanizeDuration }}',
        description: `backup_interval is ${backup.backup_interval} s; the last successful backup is older than ${tooOld} s.`,
      },
    });
  }
  return rules;
}

export function prometheusRules(config: Config): { groups: Array<{ name: string; rules: PrometheusRule[] }> } {
  const configured = Object.entries(config.monitoring.alert_rules)
    .filter(([, rule]) => rule.enabled)
    .map(([name, rule]) => toPrometheusRule(name, rule));
  return {
    groups: [
      { name: 'dr-sidecar-builtin', rules: builtInRules(config) },
      { name: 'dr-sidecar-config', rules: configured },
    ],
  };
}

/** The rule file `disaster-recovery rules` prints. */
export function renderRuleFile(config: Config): string {
  return `# Generated by \`disaster-recovery rules\` from ${config.file.split('/').pop()}; do not edit by hand.\n${stringify(prometheusRules(config), { lineWidth: 0 })}`;
}
