/**
 * The drills wired to the service's parts: which database is the primary, the
 * monitor's probes and lags, the failover procedure, the backups, and a writer
 * through the library for the outage probe.
 */
import type { Backups } from '../backup/backups.js';
import { inspectRestored } from '../backup/foreign-backup.js';
import type { PointInTimeRestores } from '../backup/point-in-time-restores.js';
import type { Config } from '../config/load.js';
import type { Engines } from '../engines/index.js';
import type { FailoverRequest } from '../failover/procedure.js';
import type { Logger } from '../log.js';
import type { Monitor } from '../monitor/monitor.js';
import type { Notifier } from '../notifications/notifier.js';
import type { Leadership } from '../state/leadership.js';
import type { FailoverRecord, StateStore } from '../state/store.js';
import { Drills } from './drills.js';
import type { SessionRunner } from './write-probe.js';

export interface DrillParts {
  config: Config;
  log: Logger;
  store: StateStore;
  notifier: Notifier;
  engines: Engines;
  monitor: Monitor;
  backups: Backups;
  /** Point-in-time restore (backup/point-in-time-restores.ts): the restore drill's random moment of the archive window. */
  pointInTime: PointInTimeRestores;
  /** Reads the cluster state afresh and says the primary. */
  currentPrimary(): Promise<string | undefined>;
  autoFailoverEnabled(): boolean;
  failoverUnderWay(): boolean;
  copyLagSeconds(name: string): number | undefined;
  runFailover(request: FailoverRequest, leadership: Leadership): Promise<FailoverRecord>;
  leadership(): Leadership | undefined;
}

export function createDrills(parts: DrillParts): Drills {
  const { config, log, engines, monitor, backups } = parts;
  return new Drills({
    config,
    log,
    store: parts.store,
    notifier: parts.notifier,
    currentPrimary: parts.currentPrimary,
    autoFailoverEnabled: parts.autoFailoverEnabled,
    failoverUnderWay: parts.failoverUnderWay,
    backupsUnderWay: () => config.topology.enabled().filter((d) => backups.busy(d.name)).map((d) => d.name),
    secondaries: async (primary) => {
      // Fresh probes: a command (not the sidecar) has none yet, and a drill judges the cluster as it is now.
      await monitor.probeAll();
      const engine = config.topology.get(primary)?.target.engine;
      return config.topology
        .enabled()
        .filter((d) => d.name !== primary && d.target.engine === engine)
        .map((d) => {
          const probe = monitor.health(d.name)?.last;
          let lag = probe?.replicationLagSeconds ?? parts.copyLagSeconds(d.name);
          // A standby of an idle primary has replayed everything however old its last transaction is (as the failover judges it).
          const behind = probe ? engines.get(d.name)?.lagBehind?.(engines.get(primary)!, probe) : undefined;
          if (behind !== undefined) lag = lag === undefined ? behind : Math.min(lag, behind);
          return { name: d.name, up: probe?.up === true, lagSeconds: lag };
        });
    },
    runFailover: parts.runFailover,
    countRows: async (name) => (await inspectRestored(config.topology.require(name))).tables,
    writable: async (name) => {
      const probe = await engines.get(name)!.probe(config.monitoring.probe_timeout * 1000);
      return probe.up && probe.inRecovery !== true && probe.readOnly !== true;
    },
    openWriter: () => openLibraryWriter(config, log),
    newestGood: (database) => backups.newestGood(database),
    verify: (file) => backups.verify(file),
    // Only with archiving on: without it there is no window, and the drill says so.
    ...(config.backup.archive.enabled
      ? {
          pointInTime: {
            window: async (database: string) => (await parts.pointInTime.windows(database))[0] ?? { database, engine: 'postgresql' as const, ranges: [], gaps: [] },
            check: (database: string, time: Date) => parts.pointInTime.verifyAt(database, time),
          },
        }
      : {}),
    leadership: parts.leadership,
  });
}

/** An application's writer: the library's manager, opened on the same config (its own state watch and pools). */
async function openLibraryWriter(config: Config, log: Logger): Promise<{ withSession: SessionRunner; close(): Promise<void> }> {
  // Imported when a drill runs: the library's manager builds a service of its own.
  const { DisasterRecoveryManager } = await import('../manager.js');
  // The probe's "primary lost, waiting" warnings are the outage being measured, not news.
  const manager = await DisasterRecoveryManager.open({ config, logger: log.child({ component: 'drill-writer' }, { level: 'error' }), poolSize: 2 });
  return { withSession: (fn) => manager.withSession(fn), close: () => manager.stop() };
}
