import type { IncomingMessage } from 'node:http';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';

const UNTRACED = new Set(['/metrics', '/healthz']);
const PASSWORD_IN_CONNINFO = /\bpassword\s*=/i;

/**
 * Everything from the first `password=` to the end of the statement becomes `***`: a quoted
 * password may hold spaces and (doubly escaped) quotes, so where it ends is not guessed.
 */
export function maskConninfoPasswords(text: string): string {
  return text.replace(/\bpassword\s*=[\s\S]*$/i, 'password=***');
}

/** HTTP (server and client: webhooks, notifications), express routes, pg queries. */
export function getNodeAutoInstrumentations(): Instrumentation[] {
  return [
    new HttpInstrumentation({
      ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED.has((req.url ?? '').split('?')[0]!),
    }),
    new ExpressInstrumentation(),
    // Statement text only, never parameter values (they may be an application's data); and only
    // inside a traced operation (failover, backup, webhook), not for every probe's connection.
    new PgInstrumentation({
      enhancedDatabaseReporting: false,
      requireParentSpan: true,
      // A standby's primary_conninfo holds the password inside the statement (ALTER SYSTEM takes no parameters).
      requestHook: (span, { query }) => {
        if (PASSWORD_IN_CONNINFO.test(query.text)) span.setAttribute('db.query.text', maskConninfoPasswords(query.text));
      },
    }),
  ];
}
