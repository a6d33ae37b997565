import { Counter, Gauge, type Registry } from 'prom-client';

/** What the offsite metrics read (the service's offsite copier and the indexes it keeps). */
export interface OffsiteMetricsSource {
  /** Destination names (`s3://bucket/prefix`: no secret), in config order. */
  destinations(): string[];
  /** Pending files per destination, and per database when the newest file of it was verified there (epoch ms). */
  snapshot(): Array<{ destination: string; pending: number; lastArrival: Map<string, number> }>;
  onFailure(listener: (destination: string) => void): unknown;
}

const SNAPSHOT_CACHE_MS = 5000;

export function registerOffsiteMetrics(registry: Registry, source: OffsiteMetricsSource): void {
  const failures = new Counter({
    name: 'dr_backup_offsite_failures_total',
    help: 'Failed passes of the offsite copy to a destination (each is retried with backoff).',
    labelNames: ['destination'],
    registers: [registry],
  });
  for (const destination of source.destinations()) failures.inc({ destination }, 0);
  source.onFailure((destination) => failures.inc({ destination }));

  // Pending files need a listing of backup_dir: at most every few seconds, not per gauge per scrape.
  let cached: { at: number; value: ReturnType<OffsiteMetricsSource['snapshot']> } | undefined;
  const snapshot = () => {
    if (!cached || Date.now() - cached.at > SNAPSHOT_CACHE_MS) cached = { at: Date.now(), value: source.snapshot() };
    return cached.value;
  };
  new Gauge({
    name: 'dr_backup_offsite_pending_files',
    help: 'Final files of backup_dir not yet verified on the destination.',
    labelNames: ['destination'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshot()) this.set({ destination: s.destination }, s.pending);
    },
  });
  new Gauge({
    name: 'dr_backup_offsite_last_success_timestamp_seconds',
    help: 'Unix time the newest file of the database (backup, manifest or segment) was verified on the destination.',
    labelNames: ['destination', 'database'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshot()) for (const [database, ms] of s.lastArrival) this.set({ destination: s.destination, database }, ms / 1000);
    },
  });
}
