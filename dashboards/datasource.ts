import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';

/**
 * The Prometheus datasource every panel queries. Its uid is fixed here and in
 * grafana/provisioning/datasources/prometheus.yml, so a provisioned Grafana
 * finds it without a datasource variable or an import step.
 */
export const PROMETHEUS_UID = 'dr-prometheus';

export const prometheusDatasource = (): DataSourceRef => ({ type: 'prometheus', uid: PROMETHEUS_UID });
