import { Counter, Gauge, type Registry } from 'prom-client';

/** What the backup metrics read: the service's `Backups`. */
export interface BackupMetricsSource {
  /** Enabled databases (their names label the metrics). */
  databases(): Array<{ name: string }>;
  /** The newest good backup of a database, from the catalogue (so backups by the CLI count too). */
  newestGood(database: string): { finished_at: string; size_bytes: number; duration_seconds: number } | undefined;
  onOutcome(listener: (outcome: { database: string; result: 'success' | 'error' }) => void): unknown;
}

/**
 * `dr_backups_total{database,result}` counts this process's attempts as they
 * end; the gauges describe the newest good backup in the catalogue at scrape
 * time, whichever process took it.
 */
const CATALOGUE_CACHE_MS = 5000;

export function registerBackupMetrics(registry: Registry, source: BackupMetricsSource): void {
  const total = new Counter({
    name: 'dr_backups_total',
    help: 'Backups attempted by this sidecar, by database and result (success or error).',
    labelNames: ['database', 'result'],
    registers: [registry],
  });
  // Every series exists from the start at 0, so increase() and alerts see the first error.
  for (const { name } of source.databases()) for (const result of ['success', 'error']) total.inc({ database: name, result }, 0);
  // The catalogue is a folder of manifests: read it at most every few seconds, not three
  // times per database per scrape (a backup taken by another process shows within that time).
  type Newest = NonNullable<ReturnType<BackupMetricsSource['newestGood']>>;
  let cached: { at: number; newest: Map<string, Newest | undefined> } | undefined;
  const newestByDatabase = () => {
    const now = Date.now();
    if (!cached || now - cached.at > CATALOGUE_CACHE_MS) {
      cached = { at: now, newest: new Map(source.databases().map(({ name }) => [name, newestOrNone(source, name)])) };
    }
    return cached.newest;
  };
  source.onOutcome(({ database, result }) => {
    total.inc({ database, result });
    cached = undefined;
  });

  const newestGauge = (name: string, help: string, value: (newest: Newest) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['database'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [database, newest] of newestByDatabase()) {
          if (newest) this.set({ database }, value(newest));
        }
      },
    });
  newestGauge('dr_backup_last_success_timestamp_seconds', 'Unix time the newest good backup of the database finished.', (n) => Date.parse(n.finished_at) / 1000);
  newestGauge('dr_backup_size_bytes', 'Size of the newest good backup of the database, as stored (compressed).', (n) => n.size_bytes);
  newestGauge('dr_backup_duration_seconds', 'How long the newest good backup of the database took, snapshot to published file.', (n) => n.duration_seconds);
}

/** An unreadable backup folder leaves its series out; it must not fail the whole scrape. */
function newestOrNone(source: BackupMetricsSource, database: string): ReturnType<BackupMetricsSource['newestGood']> {
  try {
    return source.newestGood(database);
  } catch {
    return undefined;
  }
}
