import type { Config } from '../config/load.js';
import { scrubSecrets } from '../config/secrets.js';
import type { Logger } from '../log.js';
import type { OffsiteMetricsSource } from '../metrics/offsite-metrics.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';
import { OffsiteCopier } from './offsite.js';
import { lastArrivalByDatabase, localFilesOf, offsiteStatus, type OffsiteStatus } from './offsite-status.js';

/**
 * The offsite copies as the service sees them: the copier (leader only) and
 * what status, the API and metrics read, from the indexes on disk, so a CLI
 * command shows what the running sidecar copied.
 */
export class OffsiteCopies implements OffsiteMetricsSource {
  readonly copier: OffsiteCopier;
  private readonly local: LocalStorage;

  constructor(config: Config, log: Logger, destinations: Storage[]) {
    this.local = new LocalStorage(config.backup.backup_dir);
    this.copier = new OffsiteCopier({
      local: this.local,
      destinations,
      retention: { maxBackups: config.backup.max_backups, retentionDays: config.backup.retention_days },
      log,
      scrub: (text) => scrubSecrets(text, config.secrets),
    });
  }

  destinations(): string[] {
    return this.copier.destinations.map((d) => d.name);
  }

  status(): OffsiteStatus[] {
    if (this.copier.destinations.length === 0) return [];
    const files = localFilesOf(this.local);
    return this.copier.destinations.map((d) => offsiteStatus(files, this.copier.index(d)));
  }

  snapshot(): ReturnType<OffsiteMetricsSource['snapshot']> {
    if (this.copier.destinations.length === 0) return [];
    const files = localFilesOf(this.local);
    return this.copier.destinations.map((d) => {
      const index = this.copier.index(d);
      return { destination: d.name, pending: offsiteStatus(files, index).pending_files, lastArrival: lastArrivalByDatabase(index) };
    });
  }

  onFailure(listener: (destination: string) => void): unknown {
    return this.copier.onFailure(listener);
  }

  start(): void {
    this.copier.start();
  }

  stop(): Promise<void> {
    return this.copier.stop();
  }

  wake(): void {
    this.copier.wake();
  }
}
