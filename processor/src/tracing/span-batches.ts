/**
 * The span processor of tracing: each sampled span is encoded (./otlp-encode.ts) the moment it ends, and batches of
 * those bytes are exported, so that the spans waiting for an export are a few small buffers rather than span objects.
 * With the SDK's BatchSpanProcessor every span of a batch (its object, attributes and contexts) stays alive for up
 * to the batch delay, long enough to be promoted and marked by the major collections; encoded at once, a span's
 * objects die young. Queue bound, batch size, delay and export timeout are those of the SDK processor's options.
 */
import { TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { encodeSpanEntry, encodeTraceRequestOfEntries } from './otlp-encode';

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
  /** The longest a span waits for its batch. */
  readonly scheduledDelayMillis: number;
  /** How long a flush waits for its exports. */
  readonly exportTimeoutMillis: number;
}

export class EncodingBatchSpanProcessor implements SpanProcessor {
  private entries: Uint8Array[] = [];
  private resource: ReadableSpan['resource'] | undefined;
  private scope: ReadableSpan['instrumentationScope'] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly exports = new Set<Promise<void>>();
  /** Spans handed to the exporter whose export has not finished: they count against the queue bound. */
  private exporting = 0;
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
    // A batch holds spans of one resource and scope (one tracer here); another pair starts a batch of its own.
    if (this.entries.length > 0 && (span.resource !== this.resource || span.instrumentationScope !== this.scope))
      this.exportBatch();
    if (this.entries.length + this.exporting >= this.options.maxQueueSize) {
      this.dropped++;
      return;
    }
    let entry: Uint8Array;
    try {
      entry = encodeSpanEntry(span);
    } catch {
      // Tracing never fails a request: a span the encoder cannot write (an attribute value of no OTLP type) is dropped.
      this.dropped++;
      return;
    }
    this.resource = span.resource;
    this.scope = span.instrumentationScope;
    this.entries.push(entry);
    if (this.entries.length >= this.options.maxExportBatchSize) this.exportBatch();
    else this.timer ??= setTimeout(() => this.exportBatch(), this.options.scheduledDelayMillis).unref();
  }

  /** Exports every waiting span and waits for the exports under way (at most the export timeout). */
  async forceFlush(): Promise<void> {
    while (this.entries.length > 0) this.exportBatch();
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
    const { resource, scope } = this;
    if (this.entries.length === 0 || !resource || !scope) return;
    const batch = this.entries.splice(0, this.options.maxExportBatchSize);
    const count = batch.length;
    this.exporting += count;
    const done = new Promise<void>((resolve) => {
      const finish = (ok: boolean) => {
        if (!ok) this.failed += count;
        resolve();
      };
      try {
        const body = encodeTraceRequestOfEntries(resource, scope, batch);
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
    });
    if (this.entries.length > 0)
      this.timer = setTimeout(() => this.exportBatch(), this.options.scheduledDelayMillis).unref();
  }
}
