import type { RuntimeConfig } from './config/runtime';
import type { ProcessorContext } from './extproc/context';
import { ExchangeSession } from './extproc/session';
import type { OutgoingResponse } from './grpc/messages';
import { HttpEgress, type Egress } from './fallback';
import type { ExtProcHandler, ExtProcStream, StreamMetadata } from './grpc/server';
import type { Logger } from './log';
import { Metrics } from './metrics';
import { CircuitBreakers } from './routing/breaker';
import type { RequestTracer } from './tracing';

/** The ext_proc handler: holds the current config snapshot and the state that outlives a request. */
export class Processor implements ExtProcHandler, ProcessorContext {
  readonly breakers: CircuitBreakers;
  private current: RuntimeConfig;
  private openStreams = 0;

  constructor(
    initial: RuntimeConfig,
    readonly metrics: Metrics,
    readonly logger: Logger,
    breakers: CircuitBreakers = new CircuitBreakers(),
    /** Request tracing; undefined: off. */
    readonly tracer: RequestTracer | undefined = undefined,
    readonly egress: Egress = new HttpEgress(),
  ) {
    this.current = initial;
    this.breakers = breakers;
  }

  runtime(): RuntimeConfig {
    return this.current;
  }

  /** Hot reload: requests already in flight finish with the snapshot they started with. */
  swap(next: RuntimeConfig): void {
    this.current = next;
  }

  get activeStreams(): number {
    return this.openStreams;
  }

  open(
    send: (response: OutgoingResponse) => void,
    fail?: (error: Error) => void,
    metadata?: StreamMetadata,
    writable?: () => Promise<void>,
  ): ExtProcStream {
    return new ExchangeSession(this, send, fail, metadata, writable);
  }

  localReply(status: number): void {
    this.metrics.localReplies.inc({ status: String(status) });
  }

  readonly costFailed = (metadataKey: string, error: Error): void => {
    this.metrics.costErrors.inc({ metadata_key: metadataKey });
    this.logger.warn({ metadataKey, err: error.message }, 'cost expression failed; wrote 0');
  };

  streamOpened(): void {
    this.openStreams += 1;
  }

  streamClosed(): void {
    this.openStreams -= 1;
  }
}
