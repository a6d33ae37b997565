/**
 * Every dashboard the repository ships, and how each is written to
 * grafana/dashboards/: `JSON.stringify` with two spaces and a final newline,
 * so a regenerated file differs from the committed one only when the code changed.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { disasterRecoveryDashboard } from './disaster-recovery.js';

export interface DashboardFile {
  /** File name under grafana/dashboards/. */
  file: string;
  build: () => Dashboard;
}

export const DASHBOARDS_DIR = 'grafana/dashboards';

export const dashboards: readonly DashboardFile[] = [{ file: 'disaster-recovery.json', build: disasterRecoveryDashboard }];

export function renderDashboard(dashboard: Dashboard): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}
