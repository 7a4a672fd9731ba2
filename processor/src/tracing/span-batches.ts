/**
 * The span processor of tracing: each sampled span is encoded (./otlp-encode.ts) the moment it ends, into the request
 * of the batch being filled, and that request is exported when the batch is full or its delay is up: the spans
 * waiting for an export are one buffer rather than span objects. With the SDK's BatchSpanProcessor every span of a
 * batch (its object, attributes and contexts) stays alive for up to the batch delay, long enough to be promoted and
 * marked by the major collections; encoded at once, a span's objects die young, and nothing per span outlives it.
 * Queue bound, batch size, delay and export timeout are those of the SDK processor's options.
 */
import { TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanBatchWriter } from './otlp-encode';

/** One export: an `ExportTraceServiceRequest` and the number of spans in it. */
export interface EncodedSpans {
  readonly body: Uint8Array;
  readonly count: number;
}

/** Where batches go (the OTLP transport, see ./otlp-exporter.ts). */
export interface EncodedSpanExporter {
  export(batch: EncodedSpans, done: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

export interface SpanBatchOptions {
  /** Spans waiting at most; more are dropped (counted in `dropped`). */
  readonly maxQueueSize: number;
  /** Spans per export; a full batch is exported at once. */
  readonly maxExportBatchSize: number;
  /** Bytes per export: a batch that reaches them is exported at once. */
  readonly maxExportBatchBytes: number;
  /** Encoded bytes held at most (the batch being filled and those being exported); more spans are dropped. */
  readonly maxQueueBytes: number;
  /** The longest a span waits for its batch. */
  readonly scheduledDelayMillis: number;
  /** How long a flush waits for its exports. */
  readonly exportTimeoutMillis: number;
}

/** Spans a new batch has room for at first (its buffer doubles when more come before it is exported). */
const FIRST_BATCH_ROOM = 64;

export class EncodingBatchSpanProcessor implements SpanProcessor {
  /** The batch being filled (spans of one resource and scope). */
  private batch: SpanBatchWriter | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly exports = new Set<Promise<void>>();
  /** Spans handed to the exporter whose export has not finished: they count against the queue bound. */
  private exporting = 0;
  /** Their bytes, which count against the byte bound. */
  private exportingBytes = 0;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  /** Spans dropped: the queue (waiting and being exported) was full, or the span could not be encoded. */
  dropped = 0;
  /** Spans whose export failed (the collector refused them, or did not answer in time). */
  failed = 0;

  constructor(
    private readonly exporter: EncodedSpanExporter,
    private readonly options: SpanBatchOptions,
  ) {}

  onStart(_span: Span): void {}

  onEnd(span: ReadableSpan): void {
    if (this.stopped || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    let batch = this.batch;
    // A batch holds spans of one resource and scope (one tracer here); another pair starts a batch of its own.
    if (batch && (span.resource !== batch.resource || span.instrumentationScope !== batch.scope)) {
      this.exportBatch();
      batch = undefined;
    }
    if (
      (batch?.count ?? 0) + this.exporting >= this.options.maxQueueSize ||
      (batch?.byteLength ?? 0) + this.exportingBytes >= this.options.maxQueueBytes
    ) {
      this.dropped++;
      return;
    }
    batch ??= this.batch = new SpanBatchWriter(
      span.resource,
      span.instrumentationScope,
      Math.min(this.options.maxExportBatchSize, FIRST_BATCH_ROOM),
    );
    try {
      batch.add(span);
    } catch {
      // Tracing never fails a request: a span the encoder cannot write (an attribute value of no OTLP type) is dropped.
      this.dropped++;
      return;
    }
    if (batch.count >= this.options.maxExportBatchSize || batch.byteLength >= this.options.maxExportBatchBytes)
      this.exportBatch();
    else this.timer ??= setTimeout(() => this.exportBatch(), this.options.scheduledDelayMillis).unref();
  }

  /** Exports every waiting span and waits for the exports under way (at most the export timeout). */
  async forceFlush(): Promise<void> {
    this.exportBatch();
    if (this.exports.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.exports),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.exportTimeoutMillis).unref())),
    ]);
    clearTimeout(timer);
  }

  shutdown(): Promise<void> {
    // Spans ending from now on are not taken: what waits is flushed once, then the exporter stops.
    this.stopped = true;
    this.stopping ??= this.forceFlush().then(() => this.exporter.shutdown());
    return this.stopping;
  }

  private exportBatch(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = undefined;
    if (!batch || batch.count === 0) return;
    const count = batch.count;
    const body = batch.finish();
    const bytes = body.byteLength;
    this.exporting += count;
    this.exportingBytes += bytes;
    const done = new Promise<void>((resolve) => {
      const finish = (ok: boolean) => {
        if (!ok) this.failed += count;
        resolve();
      };
      try {
        this.exporter.export({ body, count }, (result) => finish(result.code === ExportResultCode.SUCCESS));
      } catch {
        // Tracing never fails a request or a shutdown: an export that cannot even start counts as failed.
        finish(false);
      }
    });
    this.exports.add(done);
    void done.then(() => {
      this.exports.delete(done);
      this.exporting -= count;
      this.exportingBytes -= bytes;
    });
  }
}
