/**
 * OpenAI schema on both sides: the request keeps its body (model name override and forced stream usage
 * aside) and moves under the backend's path prefix; the response passes through untouched while usage is
 * read from the JSON body or the SSE stream. Non-JSON error bodies become OpenAI error JSON.
 */
import { findUsageObject, SseUsageScanner, usageFromOpenAI } from './openai-usage';
import { StreamUsageFilter } from './stream-usage-filter';
import {
  ZERO_USAGE,
  type ResponseHead,
  type ResponseTranslator,
  type TokenUsage,
  type TranslationContext,
  type Translator,
  type UpstreamRequest,
  type ResponseHeaders,
} from './types';

export function openAIPassthrough(context: TranslationContext): Translator {
  return new OpenAIPassthrough(context);
}

class OpenAIPassthrough implements Translator {
  /** The gateway asked the provider for stream usage the client did not ask for: it is kept from the client. */
  private usageForced = false;

  constructor(private readonly context: TranslationContext) {}

  request(body: Record<string, unknown>): UpstreamRequest {
    const { usageForced, ...upstream } = translateRequest(this.context, body);
    this.usageForced = usageForced;
    return upstream;
  }

  forwardUnchanged(): UpstreamRequest | undefined {
    const context = this.context;
    if (context.upstreamModel !== context.requestModel) return undefined;
    if (forcesStreamUsage(context) && context.streamUsageRequested !== true) return undefined;
    return {
      path: upstreamPath(context),
      body: undefined,
      bodyUnchanged: true,
      setHeaders: NO_HEADER_CHANGES,
      removeHeaders: NO_NAMES,
    };
  }

  forwardForm(): UpstreamRequest {
    // Nothing to add to a form: stream usage is asked for only on chat and completions.
    return {
      path: upstreamPath(this.context),
      body: undefined,
      setHeaders: NO_HEADER_CHANGES,
      removeHeaders: NO_NAMES,
    };
  }

  response(): ResponseTranslator {
    // Endpoints a route opted into (images, audio, ...) may answer any media type; the metered ones answer JSON or SSE.
    return new OpenAIResponse(this.context.operation !== 'other', this.usageForced);
  }
}

const NO_HEADER_CHANGES: Readonly<Record<string, string>> = Object.freeze({});
const NO_NAMES: readonly string[] = Object.freeze([]);

function joinPath(prefix: string, subpath: string): string {
  return prefix === '/' ? subpath : prefix + subpath;
}

function upstreamPath(context: TranslationContext): string {
  const schema = context.backend.schema;
  const prefix = schema.name === 'OpenAI' ? schema.pathPrefix : '/v1';
  return joinPath(prefix, context.subpath) + context.query;
}

function forcesStreamUsage(context: TranslationContext): boolean {
  return (
    context.forceStreamUsage && context.stream && (context.operation === 'chat' || context.operation === 'completions')
  );
}

function translateRequest(
  context: TranslationContext,
  body: Record<string, unknown>,
): UpstreamRequest & { usageForced: boolean } {
  let unchanged = true;
  let usageForced = false;
  if (context.upstreamModel !== context.requestModel) {
    body.model = context.upstreamModel;
    unchanged = false;
  }
  if (forcesStreamUsage(context)) {
    const options = body.stream_options;
    const current = options !== null && typeof options === 'object' ? (options as Record<string, unknown>) : undefined;
    if (!(context.streamUsageRequested ?? current?.include_usage === true)) {
      body.stream_options = { ...current, include_usage: true };
      unchanged = false;
      // What the client asked for, as the provider would have read its body.
      usageForced = current?.include_usage !== true;
    }
  }
  return {
    path: upstreamPath(context),
    body,
    bodyUnchanged: unchanged,
    setHeaders: NO_HEADER_CHANGES,
    removeHeaders: NO_NAMES,
    usageForced,
  };
}

const EMPTY = Buffer.alloc(0);

class OpenAIResponse implements ResponseTranslator {
  usage: TokenUsage = ZERO_USAGE;
  passthroughBody = true;
  private sse: SseUsageScanner | undefined;
  private filter: StreamUsageFilter | undefined;
  private status = 200;
  private contentType = '';
  private chunks: Buffer[] = [];
  replacedStatus: number | undefined;
  /** A 2xx answer that is neither JSON nor an event stream where only those are expected. */
  private unexpected = false;

  /** `hideUsage`: the usage chunk and fields of a stream are read but not passed on (the client did not ask). */
  constructor(
    private readonly jsonOrEventStream: boolean,
    private readonly hideUsage: boolean,
  ) {}

  head(status: number, headers: ResponseHeaders): ResponseHead {
    this.status = status;
    this.contentType = headers['content-type'] ?? '';
    const ok = status >= 200 && status < 300;
    const stream = ok && this.contentType.startsWith('text/event-stream');
    if (stream && this.hideUsage) {
      this.filter = new StreamUsageFilter();
      this.passthroughBody = false;
    } else if (stream) this.sse = new SseUsageScanner();
    this.unexpected =
      ok && this.jsonOrEventStream && !stream && this.contentType !== '' && !this.contentType.includes('json');
    const wrapError = (status >= 400 && !this.contentType.includes('json')) || this.unexpected;
    if (wrapError) this.passthroughBody = false;
    return {
      stream,
      setHeaders: wrapError ? { 'content-type': 'application/json' } : {},
      removeHeaders: this.unexpected ? ['content-encoding'] : [],
    };
  }

  body(chunk: Buffer, endOfStream: boolean): Buffer {
    if (this.filter) {
      const out = this.filter.push(chunk, endOfStream);
      if (this.filter.usage) this.usage = this.filter.usage;
      return out;
    }
    if (this.sse) {
      this.sse.push(chunk);
      if (endOfStream) this.sse.end();
      if (this.sse.usage) this.usage = this.sse.usage;
      return chunk;
    }
    if (!endOfStream) {
      this.chunks.push(chunk);
      return this.passthroughBody ? chunk : EMPTY;
    }
    const whole = this.chunks.length === 0 ? chunk : Buffer.concat([...this.chunks, chunk]);
    this.chunks = [];
    if (this.unexpected) {
      this.replacedStatus = 502;
      return Buffer.from(
        JSON.stringify({
          error: {
            message: `the backend answered ${this.contentType.slice(0, 64)}, not JSON or an event stream`,
            type: 'upstream_error',
            param: null,
            code: 'unexpected_content_type',
          },
        }),
      );
    }
    if (!this.passthroughBody) return wrapNonJsonError(this.status, whole);
    if (this.status < 300 && whole.length > 0) this.readJsonUsage(whole);
    return chunk;
  }

  private readJsonUsage(body: Buffer): void {
    const usage = usageFromOpenAI(findUsageObject(body));
    if (usage) this.usage = usage;
  }
}

function wrapNonJsonError(status: number, body: Buffer): Buffer {
  const message = body.toString('utf8').trim() || `upstream returned HTTP ${status}`;
  return Buffer.from(JSON.stringify({ error: { message, type: 'upstream_error', param: null, code: String(status) } }));
}
