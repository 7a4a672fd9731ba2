/**
 * The span processor that encodes each span when it ends and exports batches of bytes: what it exports is what the
 * encoder writes for the same spans, batches are cut at the batch size or after the delay, the queue is bounded,
 * unsampled spans are left out, and flush and shutdown wait for the exports.
 */
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { encodeTraceRequest } from '../../src/tracing/otlp-encode';
import { EncodingBatchSpanProcessor, type EncodedSpans } from '../../src/tracing/span-batches';
import { collectingSpanProcessor } from '../support/collect-spans';

const BOUNDS = { maxExportBatchBytes: 1024 * 1024, maxQueueBytes: 4 * 1024 * 1024 };

function setup(options: Partial<ConstructorParameters<typeof EncodingBatchSpanProcessor>[1]> = {}) {
  const batches: EncodedSpans[] = [];
  const pending: Array<() => void> = [];
  let shutDown = false;
  let hold = false;
  const exporter = {
    export(batch: EncodedSpans, done: (result: { code: number }) => void) {
      batches.push(batch);
      if (hold) pending.push(() => done({ code: 0 }));
      else done({ code: 0 });
    },
    shutdown: async () => {
      shutDown = true;
    },
  };
  const processor = new EncodingBatchSpanProcessor(exporter, {
    maxQueueSize: 100,
    maxExportBatchSize: 4,
    maxExportBatchBytes: 1024 * 1024,
    maxQueueBytes: 4 * 1024 * 1024,
    scheduledDelayMillis: 30,
    exportTimeoutMillis: 1000,
    ...options,
  });
  // The same spans, as the encoder would get them in one batch.
  const seen: ReadableSpan[] = [];
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'batches-test' }),
    spanProcessors: [processor, collectingSpanProcessor(seen)],
  });
  const tracer = provider.getTracer('ai-gateway-processor', '1.2.3');
  const spans = (n: number, from = 0) => {
    for (let i = from; i < from + n; i++)
      tracer.startSpan(`chat m${i}`, { attributes: { 'gen_ai.request.model': `m${i}`, n: i } }).end();
  };
  return {
    processor,
    batches,
    seen,
    spans,
    tracer,
    release: () => pending.splice(0).forEach((finish) => finish()),
    holdExports: () => (hold = true),
    isShutDown: () => shutDown,
  };
}

describe('EncodingBatchSpanProcessor', () => {
  it('exports a full batch at once (as encoded, last ended first), and the rest after the delay', async () => {
    const t = setup();
    t.spans(6);
    expect(t.batches).toHaveLength(1);
    expect(t.batches[0].count).toBe(4);
    expect(Buffer.from(t.batches[0].body).toString('hex')).toBe(
      Buffer.from(encodeTraceRequest(t.seen.slice(0, 4).reverse())).toString('hex'),
    );
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(t.batches.map((b) => b.count)).toEqual([4, 2]);
    expect(Buffer.from(t.batches[1].body).toString('hex')).toBe(
      Buffer.from(encodeTraceRequest(t.seen.slice(4).reverse())).toString('hex'),
    );
  });

  it('bounds the queue, dropping and counting what does not fit', () => {
    const t = setup({ maxQueueSize: 3, maxExportBatchSize: 10 });
    t.spans(5);
    expect(t.processor.dropped).toBe(2);
    return t.processor.forceFlush().then(() => expect(t.batches.map((b) => b.count)).toEqual([3]));
  });

  it('counts spans being exported against the bound: a collector that never answers holds no more than it', () => {
    const t = setup({ maxQueueSize: 10, maxExportBatchSize: 4 });
    t.holdExports();
    t.spans(100);
    // Two full batches in flight, two spans waiting: ten spans held, the other ninety dropped.
    expect(t.batches.map((b) => b.count)).toEqual([4, 4]);
    expect(t.processor.dropped).toBe(90);
  });

  it('exports a batch once it reaches its bytes, and sends it in a buffer of its size', () => {
    const t = setup({ maxExportBatchSize: 100, maxExportBatchBytes: 3000 });
    const big = 'x'.repeat(1000);
    for (let i = 0; i < 7; i++) t.tracer.startSpan(`chat ${i}`, { attributes: { content: big } }).end();
    // Each span is about 1,100 bytes: the third reaches 3,000 and sends its batch; the seventh waits.
    expect(t.batches.map((b) => b.count)).toEqual([3, 3]);
    for (const batch of t.batches) {
      expect(batch.body.byteLength).toBeGreaterThan(3000);
      expect(batch.body.byteLength).toBeLessThan(3500);
      expect(batch.body.buffer.byteLength).toBeLessThan(2 * batch.body.byteLength);
    }
    expect(Buffer.from(t.batches[1].body).toString('hex')).toBe(
      Buffer.from(encodeTraceRequest(t.seen.slice(3, 6).reverse())).toString('hex'),
    );
  });

  it('bounds the bytes held, waiting and being exported, dropping and counting what does not fit', () => {
    const t = setup({ maxExportBatchSize: 100, maxExportBatchBytes: 3000, maxQueueBytes: 5000 });
    t.holdExports();
    const big = 'x'.repeat(1000);
    for (let i = 0; i < 10; i++) t.tracer.startSpan(`chat ${i}`, { attributes: { content: big } }).end();
    // Three spans (about 3,350 bytes) are being exported; two more wait (under 5,000 with them); five are dropped.
    expect(t.batches.map((b) => b.count)).toEqual([3]);
    expect(t.processor.dropped).toBe(5);
    t.release();
  });

  it('counts failed exports, and an exporter that throws fails neither the span nor the flush', async () => {
    const failing = new EncodingBatchSpanProcessor(
      {
        export: (_batch, done) => done({ code: 1 }),
        shutdown: async () => undefined,
      },
      { ...BOUNDS, maxQueueSize: 100, maxExportBatchSize: 2, scheduledDelayMillis: 30, exportTimeoutMillis: 1000 },
    );
    const throwing = new EncodingBatchSpanProcessor(
      {
        export: () => {
          throw new Error('transport broken');
        },
        shutdown: async () => undefined,
      },
      { ...BOUNDS, maxQueueSize: 100, maxExportBatchSize: 2, scheduledDelayMillis: 30, exportTimeoutMillis: 1000 },
    );
    const t = setup();
    t.spans(2);
    for (const processor of [failing, throwing]) {
      expect(() => t.seen.forEach((span) => processor.onEnd(span))).not.toThrow();
      await expect(processor.forceFlush()).resolves.toBeUndefined();
      expect(processor.failed).toBe(2);
      await expect(processor.shutdown()).resolves.toBeUndefined();
    }
  });

  it('drops a span it cannot encode instead of failing the request that ends it', async () => {
    const t = setup();
    t.spans(1);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const real = t.seen[0];
    const broken = Object.assign(Object.create(Object.getPrototypeOf(real) as object) as object, real, {
      attributes: { x: cyclic },
    }) as ReadableSpan;
    expect(() => t.processor.onEnd(broken)).not.toThrow();
    expect(t.processor.dropped).toBe(1);
    // The batch is as if the broken span had never come: the spans before and after it, nothing of it.
    t.spans(1, 1);
    await t.processor.forceFlush();
    expect(t.batches.map((b) => b.count)).toEqual([2]);
    expect(Buffer.from(t.batches[0].body).toString('hex')).toBe(
      Buffer.from(encodeTraceRequest([t.seen[1], t.seen[0]])).toString('hex'),
    );
  });

  it('leaves out spans whose trace is not sampled', async () => {
    const t = setup();
    const unsampled = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.NONE,
    });
    t.tracer.startSpan('not sampled', {}, unsampled).end();
    t.spans(1);
    await t.processor.forceFlush();
    expect(t.batches.map((b) => b.count)).toEqual([1]);
  });

  it('flushes what waits and waits for the exports under way; after shutdown it takes nothing', async () => {
    const t = setup();
    t.holdExports();
    t.spans(2);
    let flushed = false;
    const flush = t.processor.forceFlush().then(() => (flushed = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(t.batches.map((b) => b.count)).toEqual([2]);
    expect(flushed).toBe(false);
    t.release();
    await flush;
    expect(flushed).toBe(true);
    t.holdExports();
    t.spans(1, 10);
    const shutdown = t.processor.shutdown();
    // Spans ending while it shuts down are not taken.
    t.spans(2, 20);
    t.release();
    await new Promise((resolve) => setTimeout(resolve, 10));
    t.release();
    await shutdown;
    expect(t.isShutDown()).toBe(true);
    expect(t.batches.map((b) => b.count)).toEqual([2, 1]);
    t.spans(3, 30);
    await t.processor.forceFlush();
    expect(t.batches).toHaveLength(2);
  });
});
