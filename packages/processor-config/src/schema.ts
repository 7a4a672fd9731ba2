/**
 * The processor configuration: the one contract between the constructs (which write it into the
 * `config.json` key of a ConfigMap at synth time) and the processor (which validates it at load).
 *
 * This module must stay free of Node-only or processor-only imports: the construct library compiles
 * it into its own package and validates every config it emits with `parseProcessorConfig`.
 */
import { z } from 'zod';
import { re2Problem } from './regex';
import { PICO_USD_PER_USD, budgetSchema, consumersSchema, modelPriceSchema } from './governance';

export const CONFIG_VERSION = 'ai-gateway.v1';

/** Envoy dynamic-metadata namespace the processor writes token counts into (Envoy AI Gateway's contract). */
export const METADATA_NAMESPACE = 'io.envoy.ai_gateway';

/** Header carrying the (original, client-facing) model name; set by the processor, matched by budgets. */
export const MODEL_HEADER = 'x-ai-eg-model';

/** Header carrying the chosen backend's name; set by the processor, matched by the HTTPRoute rules. */
export const BACKEND_HEADER = 'x-ai-gateway-backend';

/**
 * Header carrying the matched route's config name (`<namespace>/<name>`); set by the processor, matched by the
 * budgets of an AIGateway's single BackendTrafficPolicy (route budgets and per-route gateway budgets).
 */
export const ROUTE_HEADER = 'x-ai-gateway-route';

/** Metadata keys always written at the end of every response (Envoy AI Gateway's contract). */
export const TOKEN_METADATA_KEYS = {
  input: 'llm_input_token',
  output: 'llm_output_token',
  total: 'llm_total_token',
  cachedInput: 'llm_cached_input_token',
  reasoning: 'llm_reasoning_token',
} as const;

/** Variables available to CEL cost expressions. */
export const CEL_COST_VARIABLES = [
  'model',
  'backend',
  'input_tokens',
  'output_tokens',
  'total_tokens',
  'cached_input_tokens',
  'reasoning_tokens',
] as const;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const METADATA_KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const name = z.string().min(1).max(253).regex(DNS1123_SUBDOMAIN, 'must be a DNS-1123 subdomain');
const headerName = z.string().min(1).regex(HEADER_NAME, 'must be a lower-case HTTP header name');
const pathPrefix = z
  .string()
  .regex(/^\/[^?#\s]*$/, 'must start with "/" and contain no query, fragment or whitespace')
  .refine((p) => p === '/' || !p.endsWith('/'), 'must not end with "/" (except "/" itself)');

/** A credential file mounted by the processor at `<secrets-dir>/<secretName>/<key>`. */
export const secretKeyRefSchema = z
  .object({
    secretName: name,
    key: z.string().min(1).max(253).regex(SECRET_KEY, 'must be a valid Secret key'),
  })
  .strict();

/** The wire API a backend speaks; decides request/response translation. */
export const backendSchemaSchema = z.discriminatedUnion('name', [
  /** OpenAI and OpenAI-compatible servers (vLLM, Groq, Mistral, ...). `pathPrefix` replaces the route's API prefix. */
  z
    .object({
      name: z.literal('OpenAI'),
      pathPrefix,
      /**
       * How the server takes the Responses API: `native` (passed through, OpenAI's own), or `chatCompletions` (a server
       * that speaks only Chat Completions: the processor translates). Absent: `native`.
       */
      responsesApi: z.enum(['native', 'chatCompletions']).optional(),
    })
    .strict(),
  /** `/openai/deployments/{model}/...?api-version=` */
  z.object({ name: z.literal('AzureOpenAI'), apiVersion: z.string().min(1) }).strict(),
  /** Anthropic Messages API; `version` is sent as `anthropic-version`. */
  z.object({ name: z.literal('Anthropic'), version: z.string().min(1) }).strict(),
  /** AWS Bedrock Converse / ConverseStream. */
  z.object({ name: z.literal('AWSBedrock') }).strict(),
  /** Anthropic bodies on Bedrock InvokeModel(WithResponseStream); `anthropicVersion` goes in the body. */
  z.object({ name: z.literal('AWSAnthropic'), anthropicVersion: z.string().min(1) }).strict(),
  /** Vertex AI Gemini generateContent / streamGenerateContent. */
  z.object({ name: z.literal('GCPVertexAI'), projectId: z.string().min(1), region: z.string().min(1) }).strict(),
  /** Anthropic on Vertex AI rawPredict / streamRawPredict. */
  z
    .object({
      name: z.literal('GCPAnthropic'),
      projectId: z.string().min(1),
      region: z.string().min(1),
      anthropicVersion: z.string().min(1),
    })
    .strict(),
]);

/** How the processor authenticates to a backend. Credentials are only ever file references. */
export const backendAuthSchema = z.discriminatedUnion('type', [
  /**
   * A static API key; the header follows the schema (OpenAI: `Authorization: Bearer`, Anthropic: `x-api-key`, Azure:
   * `api-key`).
   */
  z.object({ type: z.literal('APIKey'), secret: secretKeyRefSchema }).strict(),
  /** `Authorization: Bearer <file content>`, for tokens refreshed by something else (e.g. a sidecar). */
  z.object({ type: z.literal('BearerToken'), secret: secretKeyRefSchema }).strict(),
  /** AWS SigV4 (service `bedrock`). */
  z
    .object({
      type: z.literal('AWSSigV4'),
      region: z.string().min(1),
      credentials: z.discriminatedUnion('source', [
        /** An AWS shared-credentials file (INI) in a Secret key. */
        z.object({ source: z.literal('Secret'), secret: secretKeyRefSchema, profile: z.string().min(1) }).strict(),
        /** The AWS default chain: env, IRSA web identity, EKS pod identity, instance metadata. */
        z.object({ source: z.literal('DefaultChain') }).strict(),
      ]),
      /**
       * Accept per-request credentials in `x-aigw-aws-access-key-id`, `x-aigw-aws-secret-access-key`,
       * `x-aigw-aws-session-token` (always stripped before upstream); fall back to `credentials`.
       */
      perRequestCredentials: z.boolean(),
    })
    .strict(),
  /** GCP OAuth2 access tokens (scope cloud-platform), refreshed before expiry. */
  z
    .object({
      type: z.literal('GCP'),
      credentials: z.discriminatedUnion('source', [
        /** A service-account JSON key in a Secret key. */
        z.object({ source: z.literal('ServiceAccountKey'), secret: secretKeyRefSchema }).strict(),
        /** Application default credentials, e.g. GKE workload identity. */
        z.object({ source: z.literal('WorkloadIdentity') }).strict(),
      ]),
    })
    .strict(),
  /** Azure Entra ID client-credentials flow (scope `https://cognitiveservices.azure.com/.default`). */
  z
    .object({
      type: z.literal('AzureEntra'),
      tenantId: z.string().min(1),
      clientId: z.string().min(1),
      clientSecret: secretKeyRefSchema,
    })
    .strict(),
]);

export const headerMutationSchema = z
  .object({
    set: z.array(z.object({ name: headerName, value: z.string() }).strict()),
    remove: z.array(headerName),
  })
  .strict();

/** Top-level JSON body keys to set (value is JSON text) or remove, applied after translation. */
export const bodyMutationSchema = z
  .object({
    set: z.array(
      z
        .object({
          path: z.string().min(1),
          value: z.string().refine(isJsonText, 'must be JSON text, e.g. "0.5" or "\\"text\\""'),
        })
        .strict(),
    ),
    remove: z.array(z.string().min(1)),
  })
  .strict();

export const backendConfigSchema = z
  .object({
    /** Unique per processor; the value of `x-ai-gateway-backend` that the HTTPRoute matches. */
    name,
    schema: backendSchemaSchema,
    /** Where Envoy sends the request; the processor needs the hostname to sign requests. */
    endpoint: z
      .object({
        hostname: z.string().min(1),
        port: z.number().int().min(1).max(65535),
        tls: z.boolean(),
      })
      .strict(),
    auth: backendAuthSchema.optional(),
    headerMutation: headerMutationSchema.optional(),
    bodyMutation: bodyMutationSchema.optional(),
  })
  .strict();

export const modelMatchSchema = z
  .object({
    type: z.enum(['Exact', 'Prefix', 'RegularExpression']),
    value: z.string().min(1),
  })
  .strict();

export const backendRefSchema = z
  .object({
    backend: name,
    /** Share of traffic among refs of the same priority. */
    weight: z.number().int().min(0),
    /** 0 is tried first; higher priorities take traffic while all lower ones are failing. */
    priority: z.number().int().min(0),
    /** Model name sent upstream instead of the client's. */
    modelNameOverride: z.string().min(1).optional(),
  })
  .strict();

/** The most attempts one request may make across a rule's priorities, the first included. */
export const MAX_FALLBACK_ATTEMPTS = 5;

/**
 * Failing over within one request: when the backend that was tried answers with one of `statuses` (or Envoy could
 * not reach it, or it timed out), the processor sends the same client request, translated and signed for it, to a
 * backend of the next higher priority itself, and relays that answer instead. Possible only where Envoy streams the
 * response to the processor in FULL_DUPLEX_STREAMED mode (it tells the processor in `protocol_config`); elsewhere the
 * first answer stands.
 */
export const fallbackSchema = z
  .object({
    /** Upstream statuses that move the request on (4xx other than 408, 409 and 429 say the request is wrong). */
    statuses: z.array(z.number().int().min(400).max(599)).max(32),
    /** Envoy could not connect to the backend, or the connection was reset before a response began. */
    connectionFailures: z.boolean(),
    /** Envoy's upstream timeouts (route, per-try, idle). */
    timeouts: z.boolean(),
    /** The most attempts in all, the first (Envoy's) included. */
    maxAttempts: z.number().int().min(2).max(MAX_FALLBACK_ATTEMPTS),
    /** The deadline of each attempt the processor makes itself, from sending it to the answer's last byte. */
    attemptTimeoutMs: z
      .number()
      .int()
      .min(1)
      .max(24 * 3_600_000),
  })
  .strict();

export const routeRuleSchema = z
  .object({
    models: z.array(modelMatchSchema).min(1),
    backends: z.array(backendRefSchema).min(1),
    fallback: fallbackSchema.optional(),
  })
  .strict();

/**
 * The endpoints every route serves, as subpaths below its endpoint prefix, each with its one method: those the
 * processor translates or meters. `/responses` (operation `responses`) is forwarded unchanged to OpenAI-schema
 * backends that serve it and metered (the Responses API reports `usage` in its JSON body and in the
 * `response.completed` event), and translated for the others. Any other path under an endpoint prefix is answered
 * 404, unless a route lists it in `passthroughEndpoints` (images and audio among them); a served path with another
 * method is answered 405.
 */
export const SERVED_ENDPOINTS = {
  OpenAI: [
    { method: 'POST', path: '/chat/completions', operation: 'chat' },
    { method: 'POST', path: '/completions', operation: 'completions' },
    { method: 'POST', path: '/embeddings', operation: 'embeddings' },
    { method: 'POST', path: '/responses', operation: 'responses' },
    { method: 'GET', path: '/models', operation: 'models' },
  ],
  Anthropic: [
    { method: 'POST', path: '/messages', operation: 'messages' },
    { method: 'POST', path: '/messages/count_tokens', operation: 'count_tokens' },
  ],
} as const;

/**
 * Methods a passthrough endpoint may allow. The processor picks the backend by the JSON body's `model`, so only
 * methods that carry a body can be routed.
 */
export const PASSTHROUGH_METHODS = ['POST', 'PUT', 'PATCH'] as const;
export type PassthroughMethod = (typeof PASSTHROUGH_METHODS)[number];

/**
 * Backend schemas that serve passthrough requests (the translators of the `other` operation); other backends answer
 * them 400.
 */
export const PASSTHROUGH_SCHEMAS = ['OpenAI', 'AzureOpenAI'] as const;

/** Longest accepted `passthroughEndpoints[].path`. */
export const MAX_PASSTHROUGH_PATH_LENGTH = 512;

/**
 * One path segment as the processor accepts it for a passthrough endpoint, in the config and in requests: no
 * percent-encoding (`%2e%2e`, `%2f` decode to dot segments and slashes upstream), no `;` (`..;` is a dot segment to
 * some servers), no backslash, no `*`.
 */
const PASSTHROUGH_SEGMENT = /^[-A-Za-z0-9._~!$&'()+,=:@]+$/;
/** The same, for a whole request subpath: one or more `/segment`s, no empty segment, no trailing `/`. */
const PASSTHROUGH_SUBPATH = /^(?:\/[-A-Za-z0-9._~!$&'()+,=:@]+)+$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

/**
 * Whether a request's subpath may be matched against `passthroughEndpoints`: only plain segments, none of them
 * `.` or `..`, nothing encoded, no `;` or backslash. Everything else is never served as a passthrough, whatever
 * the config says (the session refuses dot segments too, but this check does not rely on it).
 */
export function isPassthroughSubpath(subpath: string): boolean {
  return PASSTHROUGH_SUBPATH.test(subpath) && !DOT_SEGMENT.test(subpath);
}

/**
 * Why `path` cannot be a `passthroughEndpoints` entry, or undefined. An entry is an exact subpath below the OpenAI
 * endpoint prefix (`/images/generations`) or, ending in `/`, a prefix of the subpaths below it (`/files/`; `/` alone
 * is every subpath).
 */
export function passthroughPathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return 'must be a string';
  if (!path.startsWith('/'))
    return 'must start with "/": a path below the OpenAI endpoint prefix, e.g. "/images/generations"';
  if (path.length > MAX_PASSTHROUGH_PATH_LENGTH) return `must be at most ${MAX_PASSTHROUGH_PATH_LENGTH} characters`;
  if (/[?#]/.test(path)) return 'must not contain a query or fragment';
  if (path.includes('*')) return 'must not contain "*": write a prefix as a path ending in "/", e.g. "/files/"';
  if (path.includes('%'))
    return (
      'must not contain percent-encoding: encoded dots and slashes ("%2e", "%2f") could climb out ' +
      'of the prefix upstream'
    );
  if (path.includes(';')) return 'must not contain ";": some servers read "..;" as a ".." segment';
  if (path.includes('\\')) return 'must not contain a backslash';
  if (path === '/') return undefined;
  const segments = (path.endsWith('/') ? path.slice(1, -1) : path.slice(1)).split('/');
  if (segments.some((segment) => segment === '')) return 'must not contain empty segments ("//")';
  if (segments.some((segment) => segment === '.' || segment === '..')) return 'must not contain "." or ".." segments';
  if (!segments.every((segment) => PASSTHROUGH_SEGMENT.test(segment))) {
    return 'may only contain letters, digits and -._~!$&\'()+,=:@ between the "/"s';
  }
  const served = SERVED_ENDPOINTS.OpenAI.find((endpoint) => endpoint.path === path);
  if (served) return `is already served on every route (${served.method} ${served.path}); list only further endpoints`;
  return undefined;
}

/** A further OpenAI API endpoint a route forwards unchanged, with the platform's credential. */
export const passthroughEndpointSchema = z
  .object({
    /**
     * A subpath below the OpenAI endpoint prefix: exact (`/images/generations`), or a prefix ending in `/` (`/files/`).
     */
    path: z.string().superRefine((path, ctx) => {
      const problem = passthroughPathProblem(path);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(path)} ${problem}` });
    }),
    /** The methods allowed on it; any other method is answered 405. */
    methods: z
      .array(
        z.enum(PASSTHROUGH_METHODS, {
          error:
            `must be one of ${PASSTHROUGH_METHODS.join(', ')}: the processor picks the backend by the ` +
            `JSON body's "model", so only methods with a body can be routed`,
        }),
      )
      .min(1, 'must list at least one method')
      .superRefine((methods, ctx) => {
        const duplicate = methods.find((method, i) => methods.indexOf(method) !== i);
        if (duplicate !== undefined) ctx.addIssue({ code: 'custom', message: `lists "${duplicate}" twice` });
      }),
  })
  .strict();

/** A client-facing API mounted under a path prefix. */
export const routeEndpointSchema = z
  .object({
    /**
     * `OpenAI`: `<prefix>/chat/completions`, `/completions`, `/embeddings`, `/responses` (POST) and `/models` (GET),
     * plus the route's `passthroughEndpoints`. `Anthropic`: `<prefix>/messages`, `<prefix>/messages/count_tokens`
     * (POST). See SERVED_ENDPOINTS.
     */
    api: z.enum(['OpenAI', 'Anthropic']),
    pathPrefix,
  })
  .strict();

export const routeConfigSchema = z
  .object({
    /** `<namespace>/<name>` of the AIRoute, for logs and metrics. */
    name: z.string().min(1),
    endpoints: z.array(routeEndpointSchema).min(1),
    /** Empty: any host. Lower-case; entries may start with `*.`. */
    hostnames: z.array(
      z
        .string()
        .regex(
          /^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
          'must be a lower-case host name, optionally starting with "*."',
        ),
    ),
    rules: z.array(routeRuleSchema).min(1),
    /** Headers a request must carry (per-client budgets key on them); missing ones are answered 400. */
    requiredHeaders: z.array(headerName),
    /**
     * Further endpoints below the route's OpenAI endpoint prefix that it forwards unchanged to its OpenAI-schema
     * backends (OpenAI, Azure OpenAI), routed by the body's `model`. Only this route offers its rules for them.
     * Absent or empty: only SERVED_ENDPOINTS.
     */
    passthroughEndpoints: z.array(passthroughEndpointSchema).optional(),
    /**
     * Requests must come from a consumer (`consumers`): a budget or model list depends on who calls. Requests without
     * a known client id are answered 401 (no client id) or 403 (a client id no consumer owns).
     */
    consumerRequired: z.boolean().optional(),
    /**
     * A money budget covers the route: a request whose upstream model has no entry in `prices` is answered 400
     * before it reaches the provider, because nothing could charge it.
     */
    priceRequired: z.boolean().optional(),
  })
  .strict()
  .superRefine((route, ctx) => {
    const endpoints = route.passthroughEndpoints ?? [];
    if (endpoints.length > 0 && !route.endpoints.some((endpoint) => endpoint.api === 'OpenAI')) {
      ctx.addIssue({
        code: 'custom',
        path: ['passthroughEndpoints'],
        message: `route "${route.name}" has passthroughEndpoints but no OpenAI endpoint`,
      });
    }
    endpoints.forEach((endpoint, i) => {
      const first = endpoints.findIndex((other) => other.path === endpoint.path);
      if (first !== i) {
        ctx.addIssue({
          code: 'custom',
          path: ['passthroughEndpoints', i, 'path'],
          message:
            `route "${route.name}": ${JSON.stringify(endpoint.path)} duplicates ` +
            `passthroughEndpoints[${first}]; list its methods once`,
        });
      }
    });
  });

export const costSchema = z
  .object({
    /** Written into `io.envoy.ai_gateway` metadata; budgets read their cost from it. */
    metadataKey: z.string().regex(METADATA_KEY, 'must be a metadata key like "llm_total_token"'),
    type: z.enum(['InputToken', 'OutputToken', 'TotalToken', 'CachedInputToken', 'ReasoningToken', 'CEL', 'Price']),
    /**
     * Only for `CEL`: over `model`, `backend`, `input_tokens`, `output_tokens`, `total_tokens`, `cached_input_tokens`,
     * `reasoning_tokens`.
     */
    expression: z.string().min(1).optional(),
    /**
     * Only for `Price`: the cost's money unit in pico-dollars, e.g. 1,000,000 for micro-dollars. The processor prices
     * the response's tokens with `prices` (for the model sent upstream) and writes the amount in this unit, rounded
     * up.
     */
    picoUsdPerUnit: z.number().int().positive().max(PICO_USD_PER_USD).optional(),
  })
  .strict()
  .superRefine((cost, ctx) => {
    if ((cost.type === 'Price') !== (cost.picoUsdPerUnit !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['picoUsdPerUnit'],
        message: cost.type === 'Price' ? 'is required when type is "Price"' : 'is only allowed when type is "Price"',
      });
    }
    if (cost.type === 'CEL' && cost.expression === undefined) {
      ctx.addIssue({ code: 'custom', path: ['expression'], message: 'is required when type is "CEL"' });
    }
    if (cost.type !== 'CEL' && cost.expression !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['expression'],
        message: `is only allowed when type is "CEL", not "${cost.type}"`,
      });
    }
  });

const processorConfigBase = z
  .object({
    version: z.literal(CONFIG_VERSION),
    /** Requests with larger bodies are answered 413. */
    maxRequestBodyBytes: z.number().int().positive(),
    backends: z.array(backendConfigSchema),
    routes: z.array(routeConfigSchema),
    /** Extra metadata values computed per response. Any entry makes streaming OpenAI-schema requests ask for usage. */
    costs: z.array(costSchema),
    /**
     * Failover: a backend is skipped after `failureThreshold` consecutive failures, for `openDurationMs`, then probed.
     */
    circuitBreaker: z
      .object({
        failureThreshold: z.number().int().min(1),
        openDurationMs: z.number().int().min(1),
      })
      .strict(),
    /** Model prices, for `Price` costs; unique by model. */
    prices: z.array(modelPriceSchema).optional(),
    /** Who may call, mapped from the client ids apiKeyAuth forwards. */
    consumers: consumersSchema.optional(),
    /** The budgets Envoy enforces on this gateway's routes, as 429s and metrics name them. */
    budgets: z.array(budgetSchema).optional(),
  })
  .strict();

export const processorConfigSchema = processorConfigBase.superRefine((config, ctx) => {
  const backendNames = new Set<string>();
  config.backends.forEach((backend, i) => {
    if (backendNames.has(backend.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['backends', i, 'name'],
        message: `duplicate backend name "${backend.name}"`,
      });
    }
    backendNames.add(backend.name);
  });
  config.routes.forEach((route, r) => {
    route.rules.forEach((rule, i) => {
      rule.models.forEach((match, m) => {
        const problem = match.type === 'RegularExpression' ? re2Problem(match.value) : undefined;
        if (problem !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', r, 'rules', i, 'models', m, 'value'],
            message:
              `route "${route.name}" rule ${i}: regular expression ${JSON.stringify(match.value)} is not ` +
              `valid RE2 (${problem})`,
          });
        }
      });
      rule.backends.forEach((ref, b) => {
        if (!backendNames.has(ref.backend)) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', r, 'rules', i, 'backends', b, 'backend'],
            message: `unknown backend "${ref.backend}"`,
          });
        }
      });
      if (rule.backends.every((ref) => ref.weight === 0)) {
        ctx.addIssue({ code: 'custom', path: ['routes', r, 'rules', i, 'backends'], message: 'all weights are 0' });
      }
      if (rule.fallback !== undefined) {
        const weighted = rule.backends.filter((ref) => ref.weight > 0).map((ref) => ref.priority);
        if (weighted.length > 0 && !weighted.some((priority) => priority > Math.min(...weighted))) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', r, 'rules', i, 'fallback'],
            message:
              `route "${route.name}" rule ${i}: fallback needs a backend with weight > 0 at a higher priority ` +
              'than the first',
          });
        }
      }
    });
  });
  const costKeys = new Set<string>();
  config.costs.forEach((cost, i) => {
    if (costKeys.has(cost.metadataKey)) {
      ctx.addIssue({
        code: 'custom',
        path: ['costs', i, 'metadataKey'],
        message: `duplicate cost key "${cost.metadataKey}"`,
      });
    }
    costKeys.add(cost.metadataKey);
  });
  checkGovernance(config, costKeys, ctx);
});

/** Cross-references of prices, consumers and budgets to routes and costs. */
function checkGovernance(
  config: z.infer<typeof processorConfigBase>,
  costKeys: ReadonlySet<string>,
  ctx: z.RefinementCtx,
): void {
  const priced = new Set<string>();
  (config.prices ?? []).forEach((price, i) => {
    if (priced.has(price.model)) {
      ctx.addIssue({ code: 'custom', path: ['prices', i, 'model'], message: `model "${price.model}" is priced twice` });
    }
    priced.add(price.model);
  });
  if (priced.size === 0) {
    config.costs.forEach((cost, i) => {
      if (cost.type === 'Price') {
        ctx.addIssue({ code: 'custom', path: ['costs', i, 'type'], message: 'a "Price" cost needs `prices`' });
      }
    });
  }
  const routeNames = new Set(config.routes.map((route) => route.name));
  const tokenKeys = new Set<string>(Object.values(TOKEN_METADATA_KEYS));
  // A consumer's limit is written into the same metadata namespace as the response's usage: a shared key would have
  // the usage overwrite the limit.
  config.consumers?.entries.forEach((consumer, i) => {
    consumer.limits.forEach((limit, l) => {
      if (tokenKeys.has(limit.metadataKey) || costKeys.has(limit.metadataKey)) {
        ctx.addIssue({
          code: 'custom',
          path: ['consumers', 'entries', i, 'limits', l, 'metadataKey'],
          message:
            `consumer "${consumer.id}": "${limit.metadataKey}" is also a token or cost key the processor writes ` +
            'usage under',
        });
      }
    });
  });
  (config.budgets ?? []).forEach((budget, i) => {
    if (!tokenKeys.has(budget.costKey) && !costKeys.has(budget.costKey)) {
      ctx.addIssue({
        code: 'custom',
        path: ['budgets', i, 'costKey'],
        message: `budget "${budget.name}" charges "${budget.costKey}", which is neither a token key nor a cost`,
      });
    }
    if (budget.route !== undefined && !routeNames.has(budget.route)) {
      ctx.addIssue({
        code: 'custom',
        path: ['budgets', i, 'route'],
        message: `budget "${budget.name}" limits unknown route "${budget.route}"`,
      });
    }
  });
  config.routes.forEach((route, r) => {
    if (route.consumerRequired && config.consumers === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['routes', r, 'consumerRequired'],
        message: `route "${route.name}" requires a consumer, but the config has no consumers`,
      });
    }
    if (route.priceRequired && priced.size === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['routes', r, 'priceRequired'],
        message: `route "${route.name}" requires prices, but the config has none`,
      });
    }
  });
}

export type ProcessorConfig = z.infer<typeof processorConfigSchema>;
export type BackendConfig = z.infer<typeof backendConfigSchema>;
export type BackendSchema = z.infer<typeof backendSchemaSchema>;
export type BackendAuth = z.infer<typeof backendAuthSchema>;
export type SecretKeyRef = z.infer<typeof secretKeyRefSchema>;
export type HeaderMutation = z.infer<typeof headerMutationSchema>;
export type BodyMutation = z.infer<typeof bodyMutationSchema>;
export type RouteConfig = z.infer<typeof routeConfigSchema>;
export type RouteRule = z.infer<typeof routeRuleSchema>;
export type RouteEndpoint = z.infer<typeof routeEndpointSchema>;
export type ModelMatch = z.infer<typeof modelMatchSchema>;
export type BackendRef = z.infer<typeof backendRefSchema>;
export type FallbackConfig = z.infer<typeof fallbackSchema>;
export type PassthroughEndpoint = z.infer<typeof passthroughEndpointSchema>;
export type CostConfig = z.infer<typeof costSchema>;

export class ProcessorConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid processor config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ProcessorConfigError';
  }
}

/** Validates a parsed config document; throws ProcessorConfigError naming every problem by path. */
export function parseProcessorConfig(document: unknown): ProcessorConfig {
  const result = processorConfigSchema.safeParse(document);
  if (result.success) return result.data;
  throw new ProcessorConfigError(
    result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`),
  );
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
