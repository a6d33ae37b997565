import { getNodeAutoInstrumentations } from './instrumentations.js';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK: traces over OTLP/HTTP, with HTTP, express and pg
 * instrumented. Metrics stay on prom-client (/metrics): no OpenTelemetry metric
 * reader is configured. Probes of /metrics and /healthz are not traced.
 */
export function startTelemetry(version: string): Telemetry {
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME ?? 'dr-sidecar', 'service.version': version }),
    traceExporter: new OTLPTraceExporter(),
    instrumentations: getNodeAutoInstrumentations(),
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
