/**
 * The governance part of the processor config: consumers (who may call what, and their own budget limits), the
 * price catalog money budgets charge by, and the budgets themselves as the processor needs to know them (to name
 * the one that ran out in a 429 and to count spend).
 */
import { z } from 'zod';
import { re2Problem } from './regex';

/**
 * Header the processor sets to the authenticated consumer's id. Gateway-owned: the processor overwrites or removes
 * whatever a client sent, and budgets per consumer key on it (Envoy evaluates budgets after the processor).
 */
export const CONSUMER_HEADER = 'x-ai-gateway-consumer';

/**
 * Header Envoy Gateway's SecurityPolicy `apiKeyAuth` (`forwardClientIDHeader`) sets to the client id of the key a
 * request presented: the data key of the key's entry in its Secret.
 */
export const CLIENT_ID_HEADER = 'x-ai-gateway-client-id';

/** The rate-limit units as Envoy's `RateLimitUnit` enum names them: the only spelling `limit.fromMetadata` accepts. */
export const RATE_LIMIT_UNIT_NAMES = ['SECOND', 'MINUTE', 'HOUR', 'DAY', 'WEEK', 'MONTH', 'YEAR'] as const;
export type RateLimitUnitName = (typeof RATE_LIMIT_UNIT_NAMES)[number];

/**
 * The length of each unit's window. Envoy's rate-limit service counts fixed windows from the Unix epoch: a WEEK
 * starts on Thursday 00:00 UTC, a MONTH is 30 days and a YEAR 365 days, neither aligned to the calendar.
 */
export const RATE_LIMIT_UNIT_SECONDS: Readonly<Record<RateLimitUnitName, number>> = {
  SECOND: 1,
  MINUTE: 60,
  HOUR: 3_600,
  DAY: 86_400,
  WEEK: 604_800,
  MONTH: 2_592_000,
  YEAR: 31_536_000,
};

/** The largest rate-limit value Envoy Gateway and Envoy store (uint32). */
export const MAX_RATE_LIMIT_VALUE = 4_294_967_295;

/**
 * The largest cost Envoy charges one request (`MAX_HITS_ADDEND` of its rate-limit config): a larger `hits_addend`
 * drops the descriptor, and the request is charged nothing. The processor writes no cost above it, and money limits
 * are counted in a unit in which they fit it, so a request costing the whole budget or more is still charged in full.
 */
export const MAX_REQUEST_COST = 1_000_000_000;

/**
 * Prices are integers in pico-dollars (1e-12 USD) per token, so any price with at most six decimals per million
 * tokens is exact: $2.50 per million tokens is 2,500,000.
 */
export const PICO_USD_PER_USD = 1_000_000_000_000;

const METADATA_KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** A Secret data key (the client id apiKeyAuth forwards). */
const CLIENT_ID = /^[-._a-zA-Z0-9]+$/;
/** Consumer ids travel in a header and label metrics: short, printable, no separators Envoy descriptors split on. */
const CONSUMER_ID = /^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$/;

const metadataKey = z.string().regex(METADATA_KEY, 'must be a metadata key like "llm_total_token"');
const rateLimitValue = z.number().int().min(0).max(MAX_RATE_LIMIT_VALUE);
const picoUsdPerToken = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The price of one model, in pico-dollars per token. */
export const modelPriceSchema = z
  .object({
    /** The model name as sent to the provider (after `modelNameOverride`). */
    model: z.string().min(1),
    /** Per input token neither read from nor written to the provider's prompt cache. */
    input: picoUsdPerToken,
    /** Per output token (reasoning tokens included unless `reasoning` is set). */
    output: picoUsdPerToken,
    /** Per input token read from the prompt cache; absent: `input`. */
    cachedInput: picoUsdPerToken.optional(),
    /**
     * Per input token written to the prompt cache with the provider's default (five-minute) lifetime (Anthropic
     * `cache_creation_input_tokens`, Bedrock `cacheWriteInputTokens`); absent: `input`.
     */
    cacheWrite: picoUsdPerToken.optional(),
    /** Per input token written to the prompt cache with a one-hour lifetime; absent: `cacheWrite`, else `input`. */
    cacheWrite1h: picoUsdPerToken.optional(),
    /** Per reasoning token; absent: `output`. */
    reasoning: picoUsdPerToken.optional(),
  })
  .strict();

/** One of a consumer's own budget limits, read by a rule whose `limit.fromMetadata` names `metadataKey`. */
export const consumerLimitSchema = z
  .object({
    /** The budget's name, as 429s, logs and metrics call it. */
    budget: z.string().min(1).max(253),
    /**
     * Key in `io.envoy.ai_gateway` under which the processor writes `{requests_per_unit, unit}` on every request of
     * this consumer, before Envoy evaluates budgets.
     */
    metadataKey,
    /**
     * The header the processor sets to the consumer's id on the consumer's requests, and removes from everyone
     * else's: the rule keys its buckets on it, so it counts only the consumers that have this limit (a consumer
     * without one is not in the rule at all, rather than under its static limit).
     */
    header: z.string().regex(HEADER_NAME, 'must be a lower-case HTTP header name'),
    /** The limit in the unit of the rule's cost (tokens, or money in the cost's unit). */
    requestsPerUnit: rateLimitValue,
    unit: z.enum(RATE_LIMIT_UNIT_NAMES),
  })
  .strict();

export const consumerSchema = z
  .object({
    /** Unique per processor; the value of CONSUMER_HEADER and of the `consumer` metric label. */
    id: z.string().regex(CONSUMER_ID, 'must be 1-63 lower-case letters, digits, "-", "_" or "." (alphanumeric ends)'),
    /** The client ids (Secret data keys) of the consumer's API keys; unique across consumers. */
    clientIds: z.array(z.string().min(1).max(253).regex(CLIENT_ID, 'must be a Secret data key')).min(1),
    /**
     * The client-facing models the consumer may use, as model matches; others are answered 403. Absent: every model
     * the routes serve.
     */
    models: z
      .array(z.object({ type: z.enum(['Exact', 'Prefix', 'RegularExpression']), value: z.string().min(1) }).strict())
      .optional(),
    limits: z.array(consumerLimitSchema),
  })
  .strict()
  .superRefine((consumer, ctx) => {
    consumer.models?.forEach((match, m) => {
      const problem = match.type === 'RegularExpression' ? re2Problem(match.value) : undefined;
      if (problem !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['models', m, 'value'],
          message:
            `consumer "${consumer.id}": regular expression ${JSON.stringify(match.value)} is not valid RE2 ` +
            `(${problem})`,
        });
      }
    });
    const keys = new Set<string>();
    consumer.limits.forEach((limit, i) => {
      if (keys.has(limit.metadataKey)) {
        ctx.addIssue({
          code: 'custom',
          path: ['limits', i, 'metadataKey'],
          message: `consumer "${consumer.id}" has two limits under "${limit.metadataKey}"`,
        });
      }
      keys.add(limit.metadataKey);
    });
  });

export const consumersSchema = z
  .object({
    /** The header apiKeyAuth forwards the client id in (CLIENT_ID_HEADER for an AIGateway). */
    clientIdHeader: z.string().regex(HEADER_NAME, 'must be a lower-case HTTP header name'),
    entries: z.array(consumerSchema),
  })
  .strict()
  .superRefine((consumers, ctx) => {
    const ids = new Map<string, number>();
    const clientIds = new Map<string, string>();
    consumers.entries.forEach((consumer, i) => {
      const first = ids.get(consumer.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['entries', i, 'id'],
          message: `consumer id "${consumer.id}" is also entries[${first}]'s`,
        });
      } else ids.set(consumer.id, i);
      consumer.clientIds.forEach((clientId, k) => {
        const owner = clientIds.get(clientId);
        if (owner !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['entries', i, 'clientIds', k],
            message: `client id "${clientId}" of consumer "${consumer.id}" also belongs to consumer "${owner}"`,
          });
        } else clientIds.set(clientId, consumer.id);
      });
    });
  });

/**
 * A budget as the processor needs to know it: to name it (and when its window ends) in the 429 Envoy answers when it
 * runs out, and to count rejections. Envoy enforces it; the processor only describes it.
 */
export const budgetSchema = z
  .object({
    /** The budget's name in 429s, logs and metrics (its construct path). */
    name: z.string().min(1).max(253),
    /** The metadata key the budget's rule charges: a token key (`llm_total_token`, ...) or a `costs` entry's key. */
    costKey: metadataKey,
    /** The static limit of the rule (`limit.requests`), in the cost's unit. */
    limit: rateLimitValue,
    unit: z.enum(RATE_LIMIT_UNIT_NAMES),
    /** The route config name the budget limits; absent: every route of the gateway. */
    route: z.string().min(1).optional(),
    /** When the rule reads per-consumer limits: the `consumers.entries[].limits[].metadataKey` it names. */
    limitMetadataKey: metadataKey.optional(),
    /** Shadow mode: counted, never enforced. */
    shadow: z.boolean(),
  })
  .strict();

export type ModelPrice = z.infer<typeof modelPriceSchema>;
export type ConsumerLimit = z.infer<typeof consumerLimitSchema>;
export type ConsumerConfig = z.infer<typeof consumerSchema>;
export type ConsumersConfig = z.infer<typeof consumersSchema>;
export type BudgetConfig = z.infer<typeof budgetSchema>;
