import type { Command } from 'commander';
import { DrError } from '../../errors.js';
import { createApp } from '../../http/app.js';
import { listen } from '../../http/server.js';
import { createLogger } from '../../log.js';
import { DisasterRecoveryService } from '../../service.js';
import { loadCommandConfig } from '../context.js';

export function registerStartMonitoring(program: Command): void {
  program
    .command('start-monitoring')
    .description('run the sidecar in the foreground: probes, metrics, HTTP API')
    .action(async (_options, command: Command) => {
      const config = loadCommandConfig(command);
      if (!config.enabled) {
        throw new DrError(`disaster recovery is disabled: set disaster_recovery.enabled: true in ${config.file}`);
      }
      const log = createLogger({ level: config.logging.level, file: config.logging.file, secrets: config.secrets });
      const service = new DisasterRecoveryService(config, log);
      let server;
      try {
        server = await listen(createApp(service, log), config.server.host, config.server.port);
      } catch (error) {
        await service.stop();
        throw error;
      }
      service.start();
      log.info(
        { http: server.url, databases: config.databases.filter((d) => d.enabled).map((d) => d.name), primary: service.currentPrimary() },
        `disaster-recovery sidecar started, serving ${server.url}/metrics`,
      );
      if (!config.server.auth_token) {
        log.warn('disaster-recovery: server.auth_token is not set, so /api/* and POST routes are refused');
      }

      const running = server;
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'disaster-recovery sidecar stopping');
        await running.close();
        await service.stop();
        log.info('disaster-recovery sidecar stopped');
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
    });
}
