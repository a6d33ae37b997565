import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

/**
 * Spans for the sidecar's work. Without a registered SDK (no
 * OTEL_EXPORTER_OTLP_ENDPOINT) the API hands out no-op spans: nothing is
 * recorded, nothing is slowed. Attributes never carry a URL or a password.
 */
const tracer = () => trace.getTracer('dr-sidecar');

/** Runs `fn` in a span named `name`, the active one meanwhile: its children nest under it. */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, (span) => runIn(span, fn));
}

/**
 * A span that is not made the active context: for the frequent probes, whose
 * work needs no child spans (the pg instrumentation only traces queries that
 * have a parent), so a probe costs one span and no context switch.
 */
export function inDetachedSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return runIn(tracer().startSpan(name, { attributes }), fn);
}

/** `fn`'s error marks the span, its duration is the span's. */
async function runIn<T>(span: Span, fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await fn(span);
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}
