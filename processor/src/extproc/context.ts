import type { RuntimeConfig } from '../config/runtime';
import type { EncodedStruct } from '../grpc/messages';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import type { CircuitBreakers } from '../routing/breaker';

/** What a session needs from the processor around it. */
export interface ProcessorContext {
  /** The current config snapshot; a session keeps the one it started with. */
  runtime(): RuntimeConfig;
  readonly breakers: CircuitBreakers;
  readonly metrics: Metrics;
  readonly logger: Logger;
  localReply(status: number): void;
  /** The metadata for zero usage of (model, backend) under a config, computed once. */
  zeroUsageMetadata(runtime: RuntimeConfig, model: string, backend: string, compute: () => EncodedStruct): EncodedStruct;
  streamOpened(): void;
  streamClosed(): void;
}
