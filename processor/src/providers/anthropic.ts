/**
 * Backends that speak Anthropic Messages: the Anthropic API, Anthropic on Vertex AI (rawPredict /
 * streamRawPredict) and Anthropic on Bedrock (InvokeModel / InvokeModelWithResponseStream). Serves OpenAI
 * chat clients (translated) and Anthropic Messages clients (passed through).
 */
import { SseParser } from '../sse';
import type { BackendSchema } from '@ai-gateway-constructs/processor-config';
import {
  TranslationError,
  ZERO_USAGE,
  type ResponseHead,
  type ResponseTranslator,
  type TokenUsage,
  type TranslationContext,
  type Translator,
  type TranslatorFactory,
  type UpstreamRequest,
  type ResponseHeaders,
} from '../translate/types';
import {
  anthropicErrorBody,
  anthropicErrorType,
  asObject,
  describeProviderError,
  EMPTY,
  EVENTSTREAM_CONTENT_TYPE,
  isObject,
  JsonObject,
  modelPathSegment,
  parseJsonBuffer,
  sseEvent,
  streamUsageAsked,
  tokenUsage,
} from './common';
import {
  anthropicUsage,
  AnthropicStreamReader,
  AnthropicToOpenAIResponse,
  mergeAnthropicUsage,
  NO_COUNTS,
  openAIChatToAnthropic,
  type AnthropicCounts,
} from './openai-to-anthropic';
import type { AnthropicResponse, AnthropicStreamEvent } from './wire/anthropic-messages';
import type { Untrusted } from './wire/untrusted';

type AnthropicSchema = Extract<BackendSchema, { name: 'Anthropic' | 'GCPAnthropic' | 'AWSAnthropic' }>;

function schemaOf(context: TranslationContext): AnthropicSchema {
  const schema = context.backend.schema;
  if (schema.name !== 'Anthropic' && schema.name !== 'GCPAnthropic' && schema.name !== 'AWSAnthropic') {
    throw new TranslationError(500, `backend ${context.backend.name} is not an Anthropic backend`, 'server_error');
  }
  return schema;
}

/** Bedrock model ids may be ARNs: a "/" inside the id must not split the path. */
export function vertexModelPath(projectId: string, region: string, publisher: string, model: string): string {
  return `/v1/projects/${projectId}/locations/${region}/publishers/${publisher}/models/${modelPathSegment(model)}`;
}

function messagesPath(schema: AnthropicSchema, model: string, stream: boolean): string {
  switch (schema.name) {
    case 'Anthropic':
      return '/v1/messages';
    case 'GCPAnthropic':
      return (
        `${vertexModelPath(schema.projectId, schema.region, 'anthropic', model)}` +
        `:${stream ? 'streamRawPredict' : 'rawPredict'}`
      );
    case 'AWSAnthropic':
      return `/model/${modelPathSegment(model)}/${stream ? 'invoke-with-response-stream' : 'invoke'}`;
  }
}

/** Puts the provider-specific fields on an Anthropic body. */
function finishBody(schema: AnthropicSchema, body: JsonObject, model: string, stream: boolean): JsonObject {
  switch (schema.name) {
    case 'Anthropic':
      body.model = model;
      if (stream) body.stream = true;
      return body;
    case 'GCPAnthropic':
      delete body.model;
      if (stream) body.stream = true;
      body.anthropic_version = schema.anthropicVersion;
      return body;
    case 'AWSAnthropic':
      delete body.model;
      delete body.stream;
      body.anthropic_version = schema.anthropicVersion;
      return body;
  }
}

function versionHeaders(schema: AnthropicSchema): Record<string, string> {
  return schema.name === 'Anthropic' ? { 'anthropic-version': schema.version } : {};
}

/** OpenAI chat completions -> an Anthropic backend. */
export const openAIChatToAnthropicBackend: TranslatorFactory = (context) => {
  const schema = schemaOf(context);
  let includeUsage = streamUsageAsked(context);
  return {
    request(body): UpstreamRequest {
      includeUsage = streamUsageAsked(context, body);
      const converted = finishBody(schema, openAIChatToAnthropic(body), context.upstreamModel, context.stream);
      return {
        path: messagesPath(schema, context.upstreamModel, context.stream),
        body: converted,
        setHeaders: versionHeaders(schema),
        removeHeaders: [],
      };
    },
    response: () =>
      new AnthropicToOpenAIResponse(
        context,
        schema.name === 'AWSAnthropic' ? 'bedrock-eventstream' : 'sse',
        includeUsage,
      ),
  };
};

/** Anthropic Messages clients -> an Anthropic backend: the body passes through with the provider's fields. */
export const anthropicMessagesPassthrough: TranslatorFactory = (context): Translator => {
  const schema = schemaOf(context);
  const countTokens = context.operation === 'count_tokens';
  return {
    request(body): UpstreamRequest {
      if (countTokens) return countTokensRequest(schema, context, body);
      const unchanged = schema.name === 'Anthropic' && context.upstreamModel === context.requestModel;
      const stream = body.stream === true;
      if (schema.name === 'Anthropic') {
        if (!unchanged) body.model = context.upstreamModel;
      } else {
        delete body.model;
        if (schema.name === 'AWSAnthropic') delete body.stream;
        body.anthropic_version = schema.anthropicVersion;
      }
      return {
        path: messagesPath(schema, context.upstreamModel, stream),
        body,
        bodyUnchanged: unchanged,
        setHeaders: versionHeaders(schema),
        removeHeaders: [],
      };
    },
    forwardUnchanged(): UpstreamRequest | undefined {
      // Only the Anthropic API reads the body as the client wrote it; Vertex and Bedrock move fields around.
      if (schema.name !== 'Anthropic' || context.upstreamModel !== context.requestModel) return undefined;
      return {
        path: countTokens ? '/v1/messages/count_tokens' : messagesPath(schema, context.upstreamModel, context.stream),
        body: undefined,
        bodyUnchanged: true,
        setHeaders: versionHeaders(schema),
        removeHeaders: [],
      };
    },
    response: () => new AnthropicPassthroughResponse(schema.name === 'AWSAnthropic'),
  };
};

function countTokensRequest(schema: AnthropicSchema, context: TranslationContext, body: JsonObject): UpstreamRequest {
  switch (schema.name) {
    case 'Anthropic':
      if (context.upstreamModel !== context.requestModel) body.model = context.upstreamModel;
      return { path: '/v1/messages/count_tokens', body, setHeaders: versionHeaders(schema), removeHeaders: [] };
    case 'GCPAnthropic':
      body.model = context.upstreamModel;
      body.anthropic_version = schema.anthropicVersion;
      return {
        path: `${vertexModelPath(schema.projectId, schema.region, 'anthropic', 'count-tokens')}:rawPredict`,
        body,
        setHeaders: {},
        removeHeaders: [],
      };
    case 'AWSAnthropic':
      // The registry sends count_tokens on InvokeModel to Bedrock's CountTokens (count-tokens.ts), which answers
      // in another shape than this passthrough reads.
      throw new TranslationError(500, 'count_tokens on AWSAnthropic is served by count-tokens.ts', 'server_error');
  }
}

/**
 * Anthropic bytes back to an Anthropic client: unchanged (usage is read on the side), except Bedrock's
 * eventstream, which becomes Anthropic SSE, and Bedrock error bodies, which get Anthropic's error shape.
 */
export class AnthropicPassthroughResponse implements ResponseTranslator {
  usage: TokenUsage = ZERO_USAGE;
  passthroughBody = true;
  private counts: AnthropicCounts = { ...NO_COUNTS };
  private sse?: SseParser;
  private eventstream?: AnthropicStreamReader;
  private status = 200;
  private amznErrorType?: string;
  private collected: Buffer[] = [];
  replacedStatus: number | undefined;
  /** The content type of a 2xx answer in a framing this translator does not read. */
  private unexpected: string | undefined;

  constructor(private readonly bedrock: boolean) {}

  head(status: number, headers: ResponseHeaders): ResponseHead {
    this.status = status;
    this.amznErrorType = headers['x-amzn-errortype'];
    const contentType = headers['content-type'] ?? '';
    const ok = status >= 200 && status < 300;
    if (ok && !this.bedrock && contentType.startsWith('text/event-stream')) {
      this.sse = new SseParser();
      return { stream: true, setHeaders: {}, removeHeaders: [] };
    }
    if (ok && this.bedrock && contentType.startsWith(EVENTSTREAM_CONTENT_TYPE)) {
      this.eventstream = new AnthropicStreamReader('bedrock-eventstream');
      this.passthroughBody = false;
      return { stream: true, setHeaders: { 'content-type': 'text/event-stream' }, removeHeaders: ['content-length'] };
    }
    if (ok && !contentType.includes('json')) {
      // Neither the provider's event stream nor JSON: not bytes an Anthropic client can read.
      this.unexpected = contentType || '(none)';
      this.passthroughBody = false;
      return {
        stream: false,
        setHeaders: { 'content-type': 'application/json' },
        removeHeaders: ['content-length', 'content-encoding'],
      };
    }
    if (!ok && this.bedrock) {
      this.passthroughBody = false;
      return { stream: false, setHeaders: { 'content-type': 'application/json' }, removeHeaders: ['content-length'] };
    }
    return { stream: false, setHeaders: {}, removeHeaders: [] };
  }

  body(chunk: Buffer, endOfStream: boolean): Buffer {
    if (this.unexpected !== undefined) {
      if (!endOfStream) return EMPTY;
      this.replacedStatus = 502;
      return anthropicErrorBody(
        'api_error',
        `could not translate the ${this.bedrock ? 'Bedrock' : 'Anthropic'} response (content type ` +
          `${this.unexpected.slice(0, 64)})`,
      );
    }
    if (this.sse) {
      const events = this.sse.push(chunk);
      if (endOfStream) events.push(...this.sse.end());
      for (const e of events) if (e.data.includes('usage')) this.countEvent(parseJsonBuffer(Buffer.from(e.data)));
      return chunk;
    }
    if (this.eventstream) {
      let out = '';
      try {
        for (const event of this.eventstream.push(chunk, endOfStream)) {
          this.countEvent(event);
          out += sseEvent(String(event.type), event);
        }
      } catch (error) {
        out += sseEvent('error', { type: 'error', error: { type: 'api_error', message: (error as Error).message } });
      }
      return out === '' ? EMPTY : Buffer.from(out);
    }
    if (!endOfStream) {
      this.collected.push(chunk);
      return this.passthroughBody ? chunk : EMPTY;
    }
    const whole = this.collected.length === 0 ? chunk : Buffer.concat([...this.collected, chunk]);
    this.collected = [];
    if (this.status >= 200 && this.status < 300) {
      this.countEvent({ type: 'message', message: parseJsonBuffer(whole) });
      return chunk;
    }
    if (!this.passthroughBody) {
      const parsed = asObject(parseJsonBuffer(whole));
      if (parsed?.type === 'error' && isObject(parsed.error)) return whole;
      const { type, message } = describeProviderError(this.status, whole, this.amznErrorType);
      return anthropicErrorBody(anthropicErrorType(this.status, type), message);
    }
    return chunk;
  }

  private countEvent(value: unknown): void {
    const event: Untrusted<AnthropicStreamEvent> | undefined = asObject(value);
    if (!event) return;
    if (event.type === 'message_start' || event.type === 'message') {
      const message: Untrusted<AnthropicResponse> | undefined = asObject(event.message);
      this.counts = mergeAnthropicUsage(this.counts, asObject(message?.usage));
    } else if (event.type === 'message_delta') {
      this.counts = mergeAnthropicUsage(this.counts, asObject(event.usage));
    } else return;
    this.usage = tokenUsage(anthropicUsage(this.counts));
  }
}
