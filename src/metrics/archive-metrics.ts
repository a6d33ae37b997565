import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * What the archive metrics read: the archivers' figures. The PostgreSQL
 * archiver reports the same shape (with its slot's figures); both engines'
 * reports feed the one `dr_archive_last_segment_timestamp_seconds`.
 */
export interface ArchiveMetricsSource {
  archiverReports(): Array<{ database: string; lastSegmentAt: Date | undefined; segments?: number; bytes?: number }>;
}

export function registerArchiveMetrics(registry: Registry, source: ArchiveMetricsSource): void {
  new Gauge({
    name: 'dr_archive_last_segment_timestamp_seconds',
    help: 'Unix time the newest archived segment of the database was made durable in the local archive (SQLite: when its commits were seen).',
    labelNames: ['database'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of source.archiverReports()) if (r.lastSegmentAt) this.set({ database: r.database }, r.lastSegmentAt.getTime() / 1000);
    },
  });
  // Counted by the archivers; the counters catch up with them at scrape time.
  for (const [name, field, help] of [
    ['dr_archive_segments_total', 'segments', 'Segments this sidecar archived per database.'],
    ['dr_archive_bytes_total', 'bytes', 'Bytes this sidecar wrote to the archive per database (segments and snapshots, as stored).'],
  ] as const) {
    const counted = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames: ['database'],
      registers: [registry],
      collect() {
        for (const r of source.archiverReports()) {
          const now = r[field];
          if (now === undefined) continue;
          const before = counted.get(r.database) ?? 0;
          this.inc({ database: r.database }, Math.max(0, now - before));
          counted.set(r.database, Math.max(before, now));
        }
      },
    });
  }
}
