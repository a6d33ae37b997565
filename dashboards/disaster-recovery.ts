/**
 * The "Disaster recovery" dashboard: which database is the primary, whether
 * each one is up, how it answers, how far the secondaries are behind, when
 * failovers happened, how old the last good backup is, what alerts fire.
 * Every query reads the sidecar's own metrics (src/metrics/) or Prometheus's ALERTS.
 */
import {
  BigValueColorMode,
  BigValueGraphMode,
  BigValueTextMode,
  GraphDrawStyle,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  SortOrder,
  TooltipDisplayMode,
  VisibilityMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import {
  AnnotationQueryBuilder,
  DashboardBuilder,
  DashboardCursorSync,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type Panel,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { prometheusDatasource } from './datasource.js';
import { byThresholds, DB, promQuery, thresholds, UP_DOWN, valueText } from './panels.js';

export const DASHBOARD_UID = 'dr-disaster-recovery';

/** The latest value, as a stat shows it. */
const lastValue = () => new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);
const tableLegend = () => new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.Table).placement(LegendPlacement.Right).showLegend(true).calcs(['lastNotNull', 'max']);

function timeseries(title: string, description: string, unit: string): TimeseriesPanel {
  return new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(prometheusDatasource())
    .unit(unit)
    .height(8)
    .span(12)
    .legend(tableLegend())
    .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending));
}

function stat(title: string, description: string): StatPanel {
  return new StatPanel().title(title).description(description).datasource(prometheusDatasource()).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5);
}

function overview(): Array<cog.Builder<Panel>> {
  return [
    stat('Current primary', 'The database the sidecar routes writes to now (dr_database_is_primary == 1), with its engine. Not filtered by the database variable.')
      .withTarget(promQuery('(dr_database_is_primary == 1) * on (database) group_left (engine) dr_database_info', { legend: '{{database}} ({{engine}})', instant: true }))
      .textMode(BigValueTextMode.Name)
      .colorMode(BigValueColorMode.Background)
      .colorScheme(byThresholds())
      .thresholds(thresholds('blue'))
      .noValue('NONE')
      .span(6),
    stat('Automatic failover', 'Whether the sidecar fails over by itself (config, or the persisted switch of enable-/disable-auto-failover).')
      .withTarget(promQuery('dr_auto_failover_enabled', { legend: '{{instance}}', instant: true }))
      .mappings(valueText([[1, 'ON', 'green'], [0, 'OFF', 'orange']]))
      .colorMode(BigValueColorMode.Background)
      .span(4),
    stat('Databases', 'Result of the last probe of each database.')
      .withTarget(promQuery(`dr_database_up{${DB}}`, { legend: '{{database}}', instant: true }))
      .mappings(UP_DOWN)
      .textMode(BigValueTextMode.ValueAndName)
      .colorMode(BigValueColorMode.Background)
      .span(8),
    stat('Alerts firing', 'Alerts of the dr-sidecar rules firing now (Prometheus ALERTS).')
      .withTarget(promQuery(`count(ALERTS{alertstate="firing", ${DB}}) or vector(0)`, { instant: true }))
      .colorMode(BigValueColorMode.Background)
      .colorScheme(byThresholds())
      .thresholds(thresholds('green', [1, 'red']))
      .span(3),
    stat('Last good backup', 'Time since the newest successful backup, over the selected databases.')
      .withTarget(promQuery(`time() - max(dr_backup_last_success_timestamp_seconds{${DB}})`, { instant: true }))
      .unit('s')
      .decimals(0)
      .colorMode(BigValueColorMode.Background)
      .colorScheme(byThresholds())
      .thresholds(thresholds('green', [7200, 'orange'], [86400, 'red']))
      .noValue('never')
      .span(3),
  ];
}

function health(): Array<cog.Builder<Panel>> {
  return [
    new StateTimelinePanel()
      .title('Up / down')
      .description('Each probe result over time: a red band is a database that failed its probes.')
      .datasource(prometheusDatasource())
      .withTarget(promQuery(`dr_database_up{${DB}}`, { legend: '{{database}}' }))
      .mappings(UP_DOWN)
      .showValue(VisibilityMode.Never)
      .height(6)
      .span(24),
    timeseries('Probe response time', 'Duration of the last probe (a real query) of each database, until answer, error or timeout.', 's')
      .withTarget(promQuery(`dr_database_response_time_seconds{${DB}}`, { legend: '{{database}}' })),
    timeseries('Probe errors per second', 'Failed probes per second.', 'short')
      .withTarget(promQuery(`rate(dr_database_errors_total{${DB}}[$__rate_interval])`, { legend: '{{database}}' }))
      .axisLabel('errors/s')
      .min(0),
    timeseries('Consecutive failed probes', 'Failed probes in a row; automatic failover is considered at detection_threshold.', 'short')
      .withTarget(promQuery(`dr_database_consecutive_failures{${DB}}`, { legend: '{{database}}' }))
      .min(0)
      .decimals(0),
    timeseries('Connections', 'Sessions connected to each PostgreSQL database (pg_stat_activity); SQLite has none to report.', 'short')
      .withTarget(promQuery(`dr_database_connections{${DB}}`, { legend: '{{database}}' }))
      .min(0)
      .decimals(0),
    timeseries('Database size', 'pg_database_size, or the SQLite file plus its WAL.', 'bytes')
      .withTarget(promQuery(`dr_database_size_bytes{${DB}}`, { legend: '{{database}}' })),
    timeseries('Time since last probe', 'Age of the last probe of each database: it grows when the sidecar stops probing.', 's')
      .withTarget(promQuery(`time() - dr_database_last_probe_timestamp_seconds{${DB}}`, { legend: '{{database}}' }))
      .min(0),
  ];
}

function replication(): Array<cog.Builder<Panel>> {
  return [
    new StateTimelinePanel()
      .title('Role')
      .description('Which database was the primary when: a change of colour is a failover or switchover.')
      .datasource(prometheusDatasource())
      .withTarget(promQuery(`dr_database_is_primary{${DB}}`, { legend: '{{database}}' }))
      .mappings(valueText([[1, 'primary', 'blue'], [0, 'secondary', 'transparent']]))
      .showValue(VisibilityMode.Never)
      .height(6)
      .span(24),
    timeseries('Replication lag', 'How far each secondary is behind the primary: PostgreSQL replay lag, or the age of the last copy into a SQLite secondary.', 's')
      .withTarget(promQuery(`dr_replication_lag_seconds{${DB}}`, { legend: '{{database}}' }))
      .min(0)
      .colorScheme(byThresholds())
      .thresholds(thresholds('green', [120, 'red'])),
    stat('PostgreSQL role', 'Whether each PostgreSQL server says it is a standby (pg_is_in_recovery) or accepts writes.')
      .withTarget(promQuery(`dr_database_in_recovery{${DB}}`, { legend: '{{database}}', instant: true }))
      .mappings(valueText([[1, 'standby', 'blue'], [0, 'writable', 'green']]))
      .textMode(BigValueTextMode.ValueAndName)
      .colorMode(BigValueColorMode.Background)
      .height(8)
      .span(12),
    timeseries('Failovers', 'Failover attempts by trigger (auto, manual, alert) and result.', 'short')
      .withTarget(promQuery('sum by (trigger, result) (increase(dr_failovers_total[$__rate_interval]))', { legend: '{{trigger}} {{result}}' }))
      .drawStyle(GraphDrawStyle.Bars)
      .fillOpacity(80)
      .min(0)
      .span(16),
    stat('Failovers in the time range', 'Failover attempts in the selected time range, by result.')
      .withTarget(promQuery('sum by (result) (increase(dr_failovers_total[$__range]))', { legend: '{{result}}', instant: true }))
      .textMode(BigValueTextMode.ValueAndName)
      .decimals(0)
      .height(8)
      .span(8),
  ];
}

function backups(): Array<cog.Builder<Panel>> {
  const backup = (title: string, description: string, unit: string) => timeseries(title, description, unit).span(6).legend(new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.List).showLegend(true));
  return [
    backup('Time since last good backup', 'Age of the newest successful backup of each database.', 's')
      .withTarget(promQuery(`time() - dr_backup_last_success_timestamp_seconds{${DB}}`, { legend: '{{database}}' }))
      .min(0)
      .colorScheme(byThresholds())
      .thresholds(thresholds('green', [7200, 'orange'], [86400, 'red'])),
    backup('Backup size', 'Size of the last backup file of each database (compressed when enable_compression).', 'bytes')
      .withTarget(promQuery(`dr_backup_size_bytes{${DB}}`, { legend: '{{database}}' })),
    backup('Backup duration', 'How long the last backup of each database took.', 's')
      .withTarget(promQuery(`dr_backup_duration_seconds{${DB}}`, { legend: '{{database}}' })),
    backup('Backups', 'Backups the sidecar ran (schedule, alerts, HTTP API) by result. One taken with the CLI shows in the panels beside this one.', 'short')
      .withTarget(promQuery(`sum by (database, result) (increase(dr_backups_total{${DB}}[$__rate_interval]))`, { legend: '{{database}} {{result}}' }))
      .drawStyle(GraphDrawStyle.Bars)
      .fillOpacity(80)
      .min(0),
  ];
}

/** Drills (the guide's 定期测试): when each kind last succeeded, the outage writers saw, and how the runs ended. */
function drills(): Array<cog.Builder<Panel>> {
  const drill = (title: string, description: string, unit: string) => timeseries(title, description, unit).span(6).legend(new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.List).showLegend(true));
  return [
    drill('Time since last successful drill', 'Age of the last successful drill of each kind (switchover there and back; restore of the newest backup).', 's')
      .withTarget(promQuery('max by (kind) (time() - dr_drill_last_success_timestamp_seconds)', { legend: '{{kind}}' }))
      .min(0)
      .colorScheme(byThresholds())
      .thresholds(thresholds('green', [8 * 86400, 'orange'], [15 * 86400, 'red'])),
    drill('Drill write outage', 'How long the drill\'s probe writer (through withSession, as an application) could not commit in the last switchover drill: the switch there and the switch back.', 's')
      .withTarget(promQuery('max by (kind, direction) (dr_drill_write_outage_seconds)', { legend: '{{kind}} {{direction}}' }))
      .min(0),
    drill('Drills', 'Drills run, by kind and result: success, failed, or skipped (a secondary lagging, a failover or backup under way, automatic failover off).', 'short')
      .withTarget(promQuery('sum by (kind, result) (increase(dr_drills_total[$__rate_interval]))', { legend: '{{kind}} {{result}}' }))
      .drawStyle(GraphDrawStyle.Bars)
      .fillOpacity(80)
      .min(0),
    stat('Switch back failed', 'Whether the last switchover drill could not switch back: the cluster then runs on another primary than before (see the history).')
      .withTarget(promQuery('max(dr_drill_switch_back_failed)', { instant: true }))
      .mappings(valueText([[0, 'no', 'green'], [1, 'YES', 'red']]))
      .colorMode(BigValueColorMode.Background)
      .span(6)
      .height(8),
  ];
}

function alerts(): Array<cog.Builder<Panel>> {
  return [
    new TablePanel()
      .title('Firing alerts')
      .description('Alerts firing now (Prometheus ALERTS), with the action the sidecar takes when Alertmanager delivers them (dr_action).')
      .datasource(prometheusDatasource())
      .withTarget(promQuery(`ALERTS{alertstate="firing", ${DB}}`, { instant: true, table: true }))
      .withTransformation({
        id: 'organize',
        options: {
          excludeByName: { Time: true, Value: true, __name__: true, alertstate: true, job: true, instance: true },
          indexByName: { alertname: 0, database: 1, severity: 2, dr_action: 3, rule: 4 },
        },
      })
      .noValue('no alert firing')
      .height(8)
      .span(14),
    timeseries('Alertmanager deliveries', 'Alerts received on the webhook, by the action they map to and what became of them.', 'short')
      .withTarget(promQuery('sum by (action, result) (increase(dr_alert_notifications_total[$__rate_interval]))', { legend: '{{action}} {{result}}' }))
      .drawStyle(GraphDrawStyle.Bars)
      .fillOpacity(80)
      .min(0)
      .span(10),
  ];
}

function databaseVariable(): QueryVariableBuilder {
  return new QueryVariableBuilder('database')
    .label('Database')
    .description('The databases of the sidecar (dr_database_info)')
    .datasource(prometheusDatasource())
    .query('label_values(dr_database_info, database)')
    .definition('label_values(dr_database_info, database)')
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ selected: true, text: 'All', value: '$__all' });
}

/** Failovers as annotations on every panel: counted ones, and any change of primary (also by another process). */
function annotations(): AnnotationQueryBuilder[] {
  return [
    new AnnotationQueryBuilder()
      .name('Failovers')
      .datasource(prometheusDatasource())
      .enable(true)
      .iconColor('red')
      // increase(), not changes(): a restart of the sidecar resets the counter, which changes() would show as a failover.
      .expr('sum by (trigger, result) (increase(dr_failovers_total[$__rate_interval])) > 0')
      .titleFormat('Failover ({{trigger}}, {{result}})')
      .tagKeys('trigger,result'),
    new AnnotationQueryBuilder()
      .name('Primary changed')
      .datasource(prometheusDatasource())
      .enable(true)
      .iconColor('blue')
      .expr('(changes(dr_database_is_primary[$__rate_interval]) > 0) and on (database) (dr_database_is_primary == 1)')
      .titleFormat('{{database}} became the primary')
      .tagKeys('database'),
  ];
}

/**
 * Numbers every panel and row in layout order, so ids are stable across builds.
 * Drops the builder's `placement: inControlsMenu` from the annotations: their
 * toggles belong on the dashboard's top bar, where Grafana puts them by default.
 */
function finish(dashboard: Dashboard): Dashboard {
  let id = 1;
  for (const panel of dashboard.panels ?? []) panel.id = id++;
  for (const annotation of dashboard.annotations?.list ?? []) delete annotation.placement;
  return dashboard;
}

export function disasterRecoveryDashboard(): Dashboard {
  const builder = new DashboardBuilder('Disaster recovery')
    .uid(DASHBOARD_UID)
    .description('dr-sidecar: primary, health, replication, failovers, backups, drills and alerts of the databases it watches')
    .tags(['dr-sidecar', 'disaster-recovery'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .withVariable(databaseVariable())
    .annotations(annotations());
  const sections: Array<[string, Array<cog.Builder<Panel>>]> = [
    ['Now', overview()],
    ['Health', health()],
    ['Replication and failover', replication()],
    ['Backups', backups()],
    ['Drills', drills()],
    ['Alerts', alerts()],
  ];
  for (const [title, panels] of sections) {
    builder.withRow(new RowBuilder(title));
    for (const panel of panels) builder.withPanel(panel);
  }
  return finish(builder.build());
}
