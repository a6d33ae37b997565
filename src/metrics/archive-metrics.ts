import { Counter, Gauge, type Registry } from 'prom-client';

/** What the archive metrics read: the archivers' figures (the current primary's, and earlier primaries' last). */
export interface ArchiveMetricsSource {
  /** SQLite's archiver has no slot (slotRetainedBytes undefined, slotDrops 0); segments and bytes where the archiver counts them. */
  archiverReports(): Array<{ database: string; slotRetainedBytes: number | undefined; lastSegmentAt: Date | undefined; slotDrops: number; segments?: number; bytes?: number }>;
}

export function registerArchiveMetrics(registry: Registry, source: ArchiveMetricsSource): void {
  new Gauge({
    name: 'dr_archive_slot_retained_bytes',
    help: "WAL the primary keeps for the sidecar's replication slot (pg_current_wal_lsn() - restart_lsn): what a stopped archive costs the primary's disk.",
    labelNames: ['database'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of source.archiverReports()) if (r.slotRetainedBytes !== undefined) this.set({ database: r.database }, r.slotRetainedBytes);
    },
  });
  new Gauge({
    name: 'dr_archive_last_segment_timestamp_seconds',
    help: 'Unix time the newest WAL segment of the database was made durable in the local archive.',
    labelNames: ['database'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of source.archiverReports()) if (r.lastSegmentAt) this.set({ database: r.database }, r.lastSegmentAt.getTime() / 1000);
    },
  });
  const counted = new Map<string, number>();
  new Counter({
    name: 'dr_archive_slot_drops_total',
    help: 'Replication slots the sidecar dropped because they held more WAL than backup.archive.max_slot_wal_keep_mb (each leaves a gap in the archive).',
    labelNames: ['database'],
    registers: [registry],
    // The archivers count; the counter catches up with them at scrape time.
    collect() {
      for (const r of source.archiverReports()) {
        const before = counted.get(r.database) ?? 0;
        this.inc({ database: r.database }, Math.max(0, r.slotDrops - before));
        counted.set(r.database, Math.max(before, r.slotDrops));
      }
    },
  });
  // Counted by the archivers that count them (SQLite's); the counters catch up at scrape time.
  for (const [name, field, help] of [
    ['dr_archive_segments_total', 'segments', 'Segments this sidecar archived per database.'],
    ['dr_archive_bytes_total', 'bytes', 'Bytes this sidecar wrote to the archive per database (segments and snapshots, as stored).'],
  ] as const) {
    const seen = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames: ['database'],
      registers: [registry],
      collect() {
        for (const r of source.archiverReports()) {
          const now = r[field];
          if (now === undefined) continue;
          const before = seen.get(r.database) ?? 0;
          this.inc({ database: r.database }, Math.max(0, now - before));
          seen.set(r.database, Math.max(before, now));
        }
      },
    });
  }
}
