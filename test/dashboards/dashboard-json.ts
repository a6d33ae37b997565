/**
 * The parts of a Grafana dashboard JSON file the dashboard tests read, typed
 * loosely on purpose: the tests check the committed file, not the builder's types.
 */
import fs from 'node:fs';

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface TargetJson {
  refId?: string;
  expr?: string;
  instant?: boolean;
  range?: boolean;
  format?: string;
  datasource?: DatasourceRef;
}

export interface PanelJson {
  id?: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  targets?: TargetJson[];
  gridPos?: { x: number; y: number; w: number; h: number };
  /** Panels inside a collapsed row. */
  panels?: PanelJson[];
}

export interface AnnotationJson {
  name: string;
  builtIn?: number;
  enable?: boolean;
  expr?: string;
  datasource?: DatasourceRef;
}

export interface VariableJson {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: DatasourceRef;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}

export interface DashboardJson {
  uid: string;
  title: string;
  panels?: PanelJson[];
  annotations?: { list?: AnnotationJson[] };
  templating?: { list?: VariableJson[] };
}

export function loadDashboard(file: string): DashboardJson {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as DashboardJson;
}

/** Every panel, rows included, with the panels of collapsed rows after their row. */
export function panelsOf(dashboard: DashboardJson): PanelJson[] {
  return (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

export interface DashboardQuery {
  kind: 'panel' | 'annotation';
  /** Panel or annotation title. */
  title: string;
  /** `panel "Title" query A`, for messages. */
  where: string;
  expr: string;
  /** Grafana runs it as an instant query (else a range query). */
  instant: boolean;
}

/** Every PromQL expression of the dashboard: panel targets and annotation queries. */
export function dashboardQueries(dashboard: DashboardJson): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const panel of panelsOf(dashboard)) {
    for (const target of panel.targets ?? []) {
      queries.push({
        kind: 'panel',
        title: panel.title,
        where: `panel "${panel.title}" query ${target.refId ?? '?'}`,
        expr: target.expr ?? '',
        instant: target.instant === true && target.range !== true,
      });
    }
  }
  for (const annotation of dashboard.annotations?.list ?? []) {
    if (annotation.builtIn === 1 || !annotation.expr) continue;
    queries.push({ kind: 'annotation', title: annotation.name, where: `annotation "${annotation.name}"`, expr: annotation.expr, instant: false });
  }
  return queries;
}
