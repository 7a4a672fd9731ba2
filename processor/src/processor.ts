import type { RuntimeConfig } from './config/runtime';
import type { ProcessorContext } from './extproc/context';
import { ExchangeSession } from './extproc/session';
import type { EncodedStruct, OutgoingResponse } from './grpc/messages';
import type { ExtProcHandler, ExtProcStream } from './grpc/server';
import type { Logger } from './log';
import { Metrics } from './metrics';
import { CircuitBreakers } from './routing/breaker';

/** The ext_proc handler: holds the current config snapshot and the state that outlives a request. */
export class Processor implements ExtProcHandler, ProcessorContext {
  readonly breakers: CircuitBreakers;
  private current: RuntimeConfig;
  private openStreams = 0;
  private readonly zeroMetadata = new WeakMap<RuntimeConfig, Map<string, EncodedStruct>>();

  constructor(
    initial: RuntimeConfig,
    readonly metrics: Metrics,
    readonly logger: Logger,
    breakers: CircuitBreakers = new CircuitBreakers(),
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

  open(send: (response: OutgoingResponse) => void): ExtProcStream {
    return new ExchangeSession(this, send);
  }

  localReply(status: number): void {
    this.metrics.localReplies.inc({ status: String(status) });
  }

  zeroUsageMetadata(runtime: RuntimeConfig, model: string, backend: string, compute: () => EncodedStruct): EncodedStruct {
    let cache = this.zeroMetadata.get(runtime);
    if (!cache) {
      cache = new Map();
      this.zeroMetadata.set(runtime, cache);
    }
    const key = `${model}\u0000${backend}`;
    let metadata = cache.get(key);
    if (!metadata) {
      // Models can be client-chosen under prefix or regex matches: keep the cache bounded.
      if (cache.size >= 1000) cache.clear();
      metadata = compute();
      cache.set(key, metadata);
    }
    return metadata;
  }

  streamOpened(): void {
    this.openStreams += 1;
  }

  streamClosed(): void {
    this.openStreams -= 1;
  }
}
