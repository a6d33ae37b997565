/**
 * Cron expressions of `drill.schedule`, read by cron-parser: what node-schedule
 * itself parses cron with, so the config is checked, and the alert rule's
 * "2 × the schedule" measured, by the same reading the schedule runs on.
 */
import cronParser from 'cron-parser';

/** Why a cron expression cannot be used; undefined when it can. */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) return `expected a cron expression of 5 fields (minute hour day month weekday; 6 with seconds first), got ${fields}`;
  try {
    cronParser.parseExpression(expression).next();
    return undefined;
  } catch (error) {
    return `not a cron expression: ${(error as Error).message}`;
  }
}

/** The longest gap between two runs of the schedule over its next `runs` runs (seconds): what "overdue" is measured by. */
export function cronPeriodSeconds(expression: string, from = new Date(Date.UTC(2025, 0, 1)), runs = 60): number {
  const it = cronParser.parseExpression(expression, { currentDate: from, utc: true });
  let previous = it.next().getTime();
  let longest = 0;
  for (let i = 0; i < runs; i++) {
    const next = it.next().getTime();
    longest = Math.max(longest, next - previous);
    previous = next;
  }
  return longest / 1000;
}
