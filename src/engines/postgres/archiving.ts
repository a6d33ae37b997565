import type { Config, DatabaseConfig } from '../../config/load.js';
import { scrubSecrets } from '../../config/secrets.js';
import type { Logger } from '../../log.js';
import { WalArchiver, type ArchiverReport, type ArchiverSettings } from './wal-archiver.js';

/**
 * Continuous archiving follows the current primary (leader-only): one
 * archiver for it, replaced after a failover by one for the new primary
 * (a new slot there; its WAL continues on the new timeline).
 */
export class PostgresArchiving {
  private archiver: WalArchiver | undefined;
  private following: Promise<void> = Promise.resolve();
  private active = false;
  private timer: NodeJS.Timeout | undefined;
  /** Archivers of earlier primaries, for their last figures in the metrics. */
  private readonly reports = new Map<string, ArchiverReport>();

  constructor(
    private readonly settings: ArchiverSettings & { enabled: boolean },
    private readonly databases: () => DatabaseConfig[],
    private readonly currentPrimary: () => string | undefined,
    private readonly log: Logger,
  ) {}

  static fromConfig(config: Config, currentPrimary: () => string | undefined, log: Logger): PostgresArchiving {
    const archive = config.backup.archive;
    const settings = {
      enabled: archive.enabled,
      backupDir: config.backup.backup_dir,
      segmentIntervalSeconds: archive.segment_interval,
      maxSlotRetainedBytes: archive.max_slot_wal_keep_mb * 1048576,
      scrub: (text: string) => scrubSecrets(text, config.secrets),
    };
    return new PostgresArchiving(settings, () => config.topology.enabled(), currentPrimary, log);
  }

  start(): void {
    if (!this.settings.enabled || this.active) return;
    this.active = true;
    this.follow();
    this.timer = setInterval(() => this.follow(), 1000);
  }

  async stop(): Promise<void> {
    this.active = false;
    clearInterval(this.timer);
    await this.following;
    await this.archiver?.stop();
    this.archiver = undefined;
  }

  archiverReports(): ArchiverReport[] {
    return [...this.reports.values()];
  }

  private follow(): void {
    this.following = this.following.then(async () => {
      if (!this.active) return;
      const primary = this.databases().find((d) => d.name === this.currentPrimary() && d.target.engine === 'postgresql');
      if (this.archiver?.db.name === primary?.name) return;
      await this.archiver?.stop();
      this.archiver = undefined;
      if (!primary) return;
      this.archiver = new WalArchiver(primary, this.settings, this.log);
      this.reports.set(primary.name, this.archiver.report);
      this.archiver.start();
    }).catch((error: unknown) => this.log.error(`archive: ${(error as Error).message}`));
  }
}
