/**
 * Consumers: the client id Envoy Gateway's apiKeyAuth forwards (config `consumers.clientIdHeader`) mapped to a
 * consumer, compiled once per config. For each consumer everything the request path writes is prepared at load: the
 * header changes (CONSUMER_HEADER set) and the dynamic metadata that carries its own
 * budget limits, so a request of a known consumer allocates nothing for them.
 */
import {
  CONSUMER_HEADER,
  METADATA_NAMESPACE,
  type ConsumerConfig,
  type ConsumersConfig,
} from '@ai-gateway-constructs/processor-config';
import { encodeStruct, type StructValue } from '../grpc/encode';
import type { EncodedStruct } from '../grpc/messages';
import { compileModelMatchers } from '../routing/router';
import type { HeaderChanges } from '../translate/types';

export interface ConsumerRuntime {
  readonly config: ConsumerConfig;
  readonly id: string;
  /** Whether the consumer may use a client-facing model (`models` absent: every model). */
  allows(model: string): boolean;
  /**
   * `io.envoy.ai_gateway.<metadataKey> = {requests_per_unit, unit}` for each of its limits, written in the answer
   * that routes the request (Envoy computes rate-limit descriptors after it). Undefined without limits.
   */
  readonly limitMetadata: EncodedStruct | undefined;
  /**
   * CONSUMER_HEADER and the headers of the consumer-budget rules it is in set to its id, the other rules' headers
   * removed (a client cannot put itself into someone else's bucket). The client-id header stays: Envoy computes the
   * budgets' descriptors again from the request headers when the stream ends to charge the response, and a per-key
   * budget keys on it.
   */
  readonly headerChanges: HeaderChanges;
}

export class ConsumerDirectory {
  private readonly byClientId = new Map<string, ConsumerRuntime>();
  readonly byId = new Map<string, ConsumerRuntime>();
  readonly clientIdHeader: string;
  /** For requests without a known consumer: CONSUMER_HEADER and the client-id header removed. */
  readonly anonymousChanges: HeaderChanges;

  constructor(config: ConsumersConfig) {
    this.clientIdHeader = config.clientIdHeader;
    // Every consumer-budget rule's header: set for the consumers in the rule, removed from every other request.
    const limitHeaders = [...new Set(config.entries.flatMap((consumer) => consumer.limits.map((l) => l.header)))];
    this.anonymousChanges = {
      setHeaders: {},
      removeHeaders: [CONSUMER_HEADER, config.clientIdHeader, ...limitHeaders],
    };
    for (const consumer of config.entries) {
      const compiled = compileConsumer(consumer, limitHeaders);
      this.byId.set(consumer.id, compiled);
      for (const clientId of consumer.clientIds) this.byClientId.set(clientId, compiled);
    }
  }

  /** The consumer a client id belongs to. */
  byClientIdValue(clientId: string): ConsumerRuntime | undefined {
    return this.byClientId.get(clientId);
  }
}

function compileConsumer(consumer: ConsumerConfig, limitHeaders: readonly string[]): ConsumerRuntime {
  const match = consumer.models === undefined ? undefined : compileModelMatchers(consumer.models);
  const limits: Record<string, StructValue> = {};
  for (const limit of consumer.limits) {
    // Envoy reads `unit` as its RateLimitUnit enum name; any other spelling silently falls back to the static limit.
    limits[limit.metadataKey] = { requests_per_unit: limit.requestsPerUnit, unit: limit.unit };
  }
  return {
    config: consumer,
    id: consumer.id,
    allows: match === undefined ? () => true : (model) => match(model) !== undefined,
    limitMetadata: consumer.limits.length === 0 ? undefined : encodeStruct({ [METADATA_NAMESPACE]: limits }),
    headerChanges: {
      setHeaders: {
        [CONSUMER_HEADER]: consumer.id,
        ...Object.fromEntries(consumer.limits.map((limit) => [limit.header, consumer.id])),
      },
      removeHeaders: limitHeaders.filter((header) => !consumer.limits.some((limit) => limit.header === header)),
      repeatable: true,
    },
  };
}
