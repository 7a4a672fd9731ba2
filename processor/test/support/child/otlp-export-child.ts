/**
 * Exports two spans once with the processor's span exporter (src/tracing/otlp-exporter.ts) to the URL in argv[2],
 * outside Jest (the OTLP transport loads `http` with a dynamic import, which Jest's module sandbox refuses), and
 * prints the export's result code and our encoding of those spans in hex as one JSON line.
 * Run by test/tracing/otlp-exporter.test.ts with `node --import tsx`.
 */
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { encodeTraceRequest } from '../../../src/tracing/otlp-encode';
import { OtlpSpanExporter } from '../../../src/tracing/otlp-exporter';
import { collectingSpanProcessor } from '../collect-spans';

const spans: ReadableSpan[] = [];
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'exporter-test' }),
  spanProcessors: [collectingSpanProcessor(spans)],
});
const tracer = provider.getTracer('ai-gateway-processor');
tracer.startSpan('chat gpt-4o', { attributes: { 'gen_ai.request.model': 'gpt-4o' } }).end();
tracer.startSpan('chat gpt-4o-mini').end();

const exporter = new OtlpSpanExporter({ url: process.argv[2], timeoutMillis: 10_000 });
exporter.export({ body: encodeTraceRequest(spans), count: spans.length }, (result) => {
  const body = Buffer.from(encodeTraceRequest(spans)).toString('hex');
  process.stdout.write(`${JSON.stringify({ code: result.code, body })}\n`);
  void exporter.shutdown();
});
