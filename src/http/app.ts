import express, { type ErrorRequestHandler, type Request } from 'express';
import { parseWebhookPayload } from '../alerting/payload.js';
import { DrError, InputError } from '../errors.js';
import { failoverRecordJson, parseHistoryLimit } from '../failover/history.js';
import { FailoverFailed } from '../failover/procedure.js';
import type { Logger } from '../log.js';
import type { DisasterRecoveryService } from '../service.js';
import { admission } from './admission.js';
import { requireBearer } from './auth.js';
import { statusPageRoutes } from './status-page.js';

/** Webhook deliveries worked on at the same time (Alertmanager sends a few at once; a storm, many). */
export const WEBHOOK_CONCURRENCY = 2;
/** Deliveries that may wait for their turn before the sidecar answers 503 + Retry-After. */
export const WEBHOOK_MAX_WAITING = 1_000;

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

  // For applications, proxies and scripts: where writes go now. 503 when that database is not usable.
  app.get('/primary', async (_req, res) => {
    const primary = await service.primaryRoute();
    res.status(primary.usable ? 200 : 503).json(primary.body);
  });
  app.get('/primary/:name', async (req, res) => {
    const primary = await service.primaryRoute();
    const yes = primary.usable && primary.body.name === req.params.name;
    res.status(yes ? 200 : 503).json({ ...primary.body, is_primary: primary.body.name === req.params.name });
  });

  const auth = requireBearer(service.config.server.auth_token);
  const json = express.json({ limit: '64kb' });
  const api = express.Router();
  api.use(auth);
  api.get('/status', (_req, res) => {
    res.json(service.status());
  });
  api.get('/history', async (req, res) => {
    res.json((await service.history(parseHistoryLimit(req.query.limit ?? '20', 'limit'))).map(failoverRecordJson));
  });
  api.post('/failover', json, async (req, res) => {
    const body = objectBody(req);
    const target = optionalString(body, 'target');
    const reason = optionalString(body, 'reason') ?? 'manual failover over HTTP';
    if (!target) throw new InputError('body.target: the database to fail over to is required');
    res.json(failoverRecordJson(await service.failover({ trigger: 'manual', target, reason, ifPrimaryAnswers: 'switch over' })));
  });
  api.post('/auto-failover', json, async (req, res) => {
    const enabled = objectBody(req).enabled;
    if (typeof enabled !== 'boolean') throw new InputError('body.enabled: expected true or false');
    await service.setAutoFailover(enabled);
    res.json({ auto_failover: { enabled: service.autoFailoverEnabled() } });
  });
  api.post('/backup', json, async (req, res) => {
    // Every field is optional: no body at all backs up the current primary.
    const body = req.body === undefined ? {} : objectBody(req);
    const database = optionalString(body, 'database');
    const name = optionalString(body, 'name');
    res.status(201).json(await service.backup({ database, name, trigger: 'api' }));
  });
  app.use('/api', api);

  // Alertmanager retries on 5xx only: a bad delivery is 4xx, an unrecordable one 500 (or 503 when too many wait).
  // A few deliveries are worked on at a time, so an alert storm leaves the event loop to /metrics and /healthz between
  // them; the token is checked first, so a sender without it never takes a place in the line.
  const deliveries = admission({ concurrency: WEBHOOK_CONCURRENCY, maxWaiting: WEBHOOK_MAX_WAITING, retryAfterSeconds: 1 });
  app.post('/alertmanager/webhook', requireBearer(service.config.server.auth_token, { basic: true }), deliveries, express.json({ limit: '1mb' }), async (req, res) => {
    const parsed = parseWebhookPayload(req.body);
    if (!parsed.ok) throw new InputError(`not an Alertmanager webhook payload: ${parsed.error}`);
    const receipt = await service.alerts.receive(parsed.payload);
    res.json(receipt);
  });

  if (service.config.server.status_page) app.use(statusPageRoutes(service));

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });

  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    if (error instanceof DrError) {
      res.status(error.status).json({ error: error.message, ...(error instanceof FailoverFailed ? { record: failoverRecordJson(error.record) } : {}) });
      return;
    }
    const status = typeof error?.status === 'number' && error.status < 500 ? error.status : 500;
    if (status >= 500) log.error({ err: error }, 'disaster-recovery http: request failed');
    res.status(status).json({ error: status >= 500 ? 'internal error' : String(error.message ?? error) });
  };
  app.use(onError);
  return app;
}

function objectBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError('expected a JSON object body with Content-Type: application/json');
  }
  return body as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new InputError(`body.${key}: expected a non-empty string`);
  return value;
}
