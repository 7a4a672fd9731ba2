/**
 * The span exporter: OTLP/HTTP protobuf to `<endpoint>/v1/traces`, over the maintained OTLP transport of
 * `@opentelemetry/otlp-exporter-base` (retries with backoff, timeouts, bounded concurrent exports, gzip, headers and
 * every `OTEL_EXPORTER_OTLP_*` / `OTEL_EXPORTER_OTLP_TRACES_*` setting read as the SDK's own OTLP exporters read
 * them), sending requests our encoder wrote (./otlp-encode.ts, batched by ./span-batches.ts) in place of the
 * maintained serializer's. The collector's
 * answer is read by the maintained response deserializer.
 */
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { EncodedSpanExporter, EncodedSpans } from './span-batches';

/** The exporter's component type in the OpenTelemetry self-observability metrics (as the SDK's own names it). */
const COMPONENT_TYPE = 'otlp_http_span_exporter';

/** Requests come encoded (ours, see span-batches.ts); response decoding: the maintained one. */
export const traceSerializer = {
  serializeRequest: (batch: EncodedSpans): Uint8Array => batch.body,
  deserializeResponse: (data: Uint8Array) => ProtobufTraceSerializer.deserializeResponse(data),
};

export interface OtlpSpanExporterOptions {
  /** The collector: `http(s)://host:port` (then `/v1/traces` is appended) or a full URL with a path. */
  readonly url: string;
  /** One export's time limit, retries included. */
  readonly timeoutMillis: number;
}

export class OtlpSpanExporter extends OTLPExporterBase<EncodedSpans> implements EncodedSpanExporter {
  constructor(options: OtlpSpanExporterOptions) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions({ url: options.url, timeoutMillis: options.timeoutMillis }, 'TRACES', 'v1/traces', {
          'Content-Type': 'application/x-protobuf',
        }),
        traceSerializer,
        COMPONENT_TYPE,
        { name: 'span', countItems: (batch) => batch.count },
        undefined,
      ),
    );
  }
}
