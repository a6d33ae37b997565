/**
 * Small pieces the dashboards share: a Prometheus query on the provisioned
 * datasource, value mappings, thresholds, and the `database` filter.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import {
  FieldColorBuilder,
  FieldColorModeId,
  MappingType,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  type FieldColor,
  type ValueMapping,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { prometheusDatasource } from './datasource.js';

/** Label matcher of every per-database query: `$database` is a regex (multi-value, "All" = `.*`). */
export const DB = 'database=~"$database"';

export interface QueryOptions {
  legend?: string;
  /** An instant query (stat, table): only the latest value is shown. */
  instant?: boolean;
  table?: boolean;
  refId?: string;
}

/** A PromQL query on the provisioned Prometheus datasource. */
export function promQuery(expr: string, opts: QueryOptions = {}): DataqueryBuilder {
  const q = new DataqueryBuilder().datasource(prometheusDatasource()).expr(expr).refId(opts.refId ?? 'A');
  if (opts.legend !== undefined) q.legendFormat(opts.legend);
  if (opts.instant) q.instant();
  else q.range();
  if (opts.table) q.format(PromQueryFormat.Table);
  return q;
}

/** Value → text and colour, e.g. 1 → UP (green). */
export function valueText(entries: Array<[value: number, text: string, color: string]>): ValueMapping[] {
  const options: Record<string, { text: string; color: string; index: number }> = {};
  entries.forEach(([value, text, color], index) => (options[String(value)] = { text, color, index }));
  return [{ type: MappingType.ValueToText, options }];
}

export const UP_DOWN = valueText([
  [1, 'UP', 'green'],
  [0, 'DOWN', 'red'],
]);

/** Absolute thresholds: the first colour from -inf, then each `[from, colour]`. */
export function thresholds(base: string, ...steps: Array<[from: number, color: string]>): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder()
    .mode(ThresholdsMode.Absolute)
    .steps([{ value: null, color: base }, ...steps.map(([value, color]) => ({ value, color }))]);
}

export const byThresholds = (): cog.Builder<FieldColor> =>
  new FieldColorBuilder().mode(FieldColorModeId.Thresholds);
