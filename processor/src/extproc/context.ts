import type { RuntimeConfig } from '../config/runtime';
import type { Egress } from '../fallback';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import type { CircuitBreakers } from '../routing/breaker';
import type { RequestTracer } from '../tracing';

/** What a session needs from the processor around it. */
export interface ProcessorContext {
  /** The current config snapshot; a session keeps the one it started with. */
  runtime(): RuntimeConfig;
  readonly breakers: CircuitBreakers;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Request tracing; undefined when off (then nothing is allocated for it). */
  readonly tracer: RequestTracer | undefined;
  /** Sends the requests the processor makes itself (fallback attempts). */
  readonly egress: Egress;
  localReply(status: number): void;
  /** A cost expression failed for one response (0 was written): counted and logged. */
  readonly costFailed: (metadataKey: string, error: Error) => void;
  streamOpened(): void;
  streamClosed(): void;
}
