import type { IncomingMessage } from 'node:http';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';

const UNTRACED = new Set(['/metrics', '/healthz']);

/** HTTP (server and client: webhooks, notifications), express routes, pg queries. */
export function getNodeAutoInstrumentations(): Instrumentation[] {
  return [
    new HttpInstrumentation({
      ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED.has((req.url ?? '').split('?')[0]!),
    }),
    new ExpressInstrumentation(),
    // Statement text only, never parameter values (they may be an application's data); and only
    // inside a traced operation (failover, backup, webhook), not for every probe's connection.
    new PgInstrumentation({ enhancedDatabaseReporting: false, requireParentSpan: true }),
  ];
}
