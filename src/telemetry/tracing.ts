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
 * A span that is not made the active context, ended by `endSpan`: for the
 * frequent probes, whose work needs no child spans (the pg instrumentation only
 * traces queries that have a parent), so a probe costs one span, no context
 * switch and no extra promise.
 */
export function startDetachedSpan(name: string, attributes: Attributes): Span {
  return tracer().startSpan(name, { attributes });
}

/** Ends `span` with the outcome's attributes; an error marks it failed. */
export function endSpan(span: Span, attributes: Attributes, error?: unknown): void {
  span.setAttributes(attributes);
  if (error !== undefined) markFailed(span, error);
  span.end();
}

function markFailed(span: Span, error: unknown): void {
  const failure = error instanceof Error ? error : new Error(String(error));
  span.recordException(failure);
  span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
}

/** `fn`'s error marks the span, its duration is the span's. */
async function runIn<T>(span: Span, fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await fn(span);
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}
