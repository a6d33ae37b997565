import type { AlertRecord, FailoverRecord } from '../state/store.js';
import type { StatusReport } from '../status.js';
import { PAGE_LIMITS, statusPageData, type StatusPageData } from './data.js';

/** What the page is built from: the running service answers all of it. */
export interface StatusPageSource {
  /** The report /api/status serves. */
  status(): StatusReport;
  /** Newest first. */
  history(limit: number): Promise<FailoverRecord[]>;
  /** Newest first. */
  alertRecords(limit: number): Promise<AlertRecord[]>;
  /** The newest good backup of each enabled database that has one (manifest fields and path). */
  newestBackups(): Array<Record<string, unknown>>;
}

/**
 * The page's data now. A journal that cannot be read (a sidecar cut off from
 * etcd) leaves its lists empty and says why: the databases and the primary are
 * what a person opens the page for, exactly when the cluster is in trouble.
 */
export async function readStatusPage(source: StatusPageSource, now = new Date()): Promise<StatusPageData> {
  const report = source.status();
  let history: FailoverRecord[] = [];
  let alerts: AlertRecord[] = [];
  let problem: string | null = null;
  try {
    [history, alerts] = await Promise.all([source.history(PAGE_LIMITS.history), source.alertRecords(PAGE_LIMITS.alerts)]);
  } catch (error) {
    // An endpoint's user information never reaches a token-less page, whoever formatted the message.
    problem = (error as Error).message.replace(/\/\/[^/@\s]*@/g, '//***@');
  }
  return statusPageData(report, { history, alerts, backups: source.newestBackups(), problem }, now);
}
