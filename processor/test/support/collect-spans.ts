import { SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

/** A span processor that appends each span the SDK ends to `into`: the spans as an exporter would get them. */
export function collectingSpanProcessor(into: ReadableSpan[]): SpanProcessor {
  return new SimpleSpanProcessor({
    export: (spans, done) => {
      into.push(...spans);
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
  });
}
