import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { createApp } from '../../http/app.js';
import { listen, type RunningServer } from '../../http/server.js';
import { createLogger } from '../../log.js';
import { DisasterRecoveryService } from '../../sidecar.js';
import { loadCommandConfig } from '../context.js';

export function registerStartMonitoring(program: Command): void {
  program
    .command('start-monitoring')
    .description('run the sidecar in the foreground: probes, failover, backups, metrics, HTTP API')
    .action(async (_options, command: Command) => {
      const config = loadCommandConfig(command);
      if (!config.enabled) {
        throw new ConfigError(config.file, ['disaster_recovery.enabled: is false, so the sidecar does not start (set it to true)']);
      }
      const log = createLogger({ level: config.logging.level, file: config.logging.file, secrets: config.secrets });
      // The one command that creates a missing state store (and logs where).
      const service = await DisasterRecoveryService.open(config, log, 'create');
      let server: RunningServer | undefined;
      let stopping = false;
      let stopped!: () => void;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'disaster-recovery sidecar stopping');
        await server?.close();
        await service.stop();
        log.info('disaster-recovery sidecar stopped');
        stopped();
      };
      // Installed before anything starts, so a signal during start-up is also a clean stop.
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
      try {
        server = await listen(createApp(service, log), config.server.host, config.server.port);
      } catch (error) {
        await service.stop();
        throw error;
      }
      if (!stopping) {
        await service.start();
        log.info(
          { http: server.url, databases: config.topology.enabled().map((d) => d.name), primary: service.currentPrimary(), state: config.state.path },
          `disaster-recovery sidecar started, serving ${server.url}/metrics`,
        );
        if (!config.server.auth_token) {
          log.warn('disaster-recovery: server.auth_token is not set, so /api/* and POST routes are refused');
        }
      }
      // The command ends when a signal has stopped everything; the CLI then flushes traces and exits 0.
      await done;
    });
}
