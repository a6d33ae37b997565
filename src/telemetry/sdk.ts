import { getNodeAutoInstrumentations } from './instrumentations.js';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { resourceFromAttributes } from '@opentelemetry/resources';

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK: traces over OTLP, with HTTP, express and pg
 * instrumented. Metrics stay on prom-client (/metrics): no OpenTelemetry metric
 * reader is configured. Probes of /metrics and /healthz are not traced.
 */
export function startTelemetry(version: string): Telemetry {
  // Batches leave every second rather than every five: a failover's trace reaches the
  // collector before a sidecar that is itself about to die can lose it, and the
  // probes' spans are short-lived objects instead of piling up for the collector.
  process.env.OTEL_BSP_SCHEDULE_DELAY ??= '1000';
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME ?? 'dr-sidecar', 'service.version': version }),
    // Spans go where the standard OTEL_* variables say (OTLP over http/protobuf by default;
    // OTEL_EXPORTER_OTLP_PROTOCOL=http/json or grpc, OTEL_TRACES_EXPORTER=console|none).
    instrumentations: getNodeAutoInstrumentations(),
    // Without these the SDK would start OTLP metric and log exporters of its own.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
