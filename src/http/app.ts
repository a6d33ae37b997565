import express, { type ErrorRequestHandler } from 'express';
import { DrError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DisasterRecoveryService } from '../service.js';
import { requireBearer } from './auth.js';

/** Routes only: each parses its input, calls the service once, formats the answer. */
export function createApp(service: DisasterRecoveryService, log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/metrics', async (_req, res) => {
    const body = await service.metrics.expose();
    res.set('Content-Type', service.metrics.contentType()).send(body);
  });

  const api = express.Router();
  api.use(requireBearer(service.config.server.auth_token));
  api.get('/status', (_req, res) => {
    res.json(service.status());
  });
  app.use('/api', api);

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });

  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    if (error instanceof DrError) {
      res.status(error.status).json({ error: error.message });
      return;
    }
    const status = typeof error?.status === 'number' && error.status < 500 ? error.status : 500;
    if (status >= 500) log.error({ err: error }, 'disaster-recovery http: request failed');
    res.status(status).json({ error: status >= 500 ? 'internal error' : String(error.message ?? error) });
  };
  app.use(onError);
  return app;
}
