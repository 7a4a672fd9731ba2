/**
 * OpenAI schema on both sides: the request keeps its body (model name override and forced stream usage
 * aside) and moves under the backend's path prefix; the response passes through untouched while usage is
 * read from the JSON body or the SSE stream. Non-JSON error bodies become OpenAI error JSON.
 */
import { findUsageObject, SseUsageScanner, usageFromOpenAI } from './openai-usage';
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
  constructor(private readonly context: TranslationContext) {}

  request(body: Record<string, unknown>): UpstreamRequest {
    return translateRequest(this.context, body);
  }

  response(): ResponseTranslator {
    return new OpenAIResponse();
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
  return context.forceStreamUsage && context.stream && (context.operation === 'chat' || context.operation === 'completions');
}

function translateRequest(context: TranslationContext, body: Record<string, unknown>): UpstreamRequest {
  let unchanged = true;
  if (context.upstreamModel !== context.requestModel) {
    body.model = context.upstreamModel;
    unchanged = false;
  }
  if (forcesStreamUsage(context)) {
    const options = body.stream_options;
    const current = options !== null && typeof options === 'object' ? (options as Record<string, unknown>) : undefined;
    if (current?.include_usage !== true) {
      body.stream_options = { ...current, include_usage: true };
      unchanged = false;
    }
  }
  return {
    path: upstreamPath(context),
    body,
    bodyUnchanged: unchanged,
    setHeaders: NO_HEADER_CHANGES,
    removeHeaders: NO_NAMES,
  };
}

const EMPTY = Buffer.alloc(0);

class OpenAIResponse implements ResponseTranslator {
  usage: TokenUsage = ZERO_USAGE;
  passthroughBody = true;
  private sse: SseUsageScanner | undefined;
  private status = 200;
  private contentType = '';
  private chunks: Buffer[] = [];

  head(status: number, headers: ResponseHeaders): ResponseHead {
    this.status = status;
    this.contentType = headers['content-type'] ?? '';
    const stream = status >= 200 && status < 300 && this.contentType.startsWith('text/event-stream');
    if (stream) this.sse = new SseUsageScanner();
    const wrapError = status >= 400 && !this.contentType.includes('json');
    if (wrapError) this.passthroughBody = false;
    return {
      stream,
      setHeaders: wrapError ? { 'content-type': 'application/json' } : {},
      removeHeaders: [],
    };
  }

  body(chunk: Buffer, endOfStream: boolean): Buffer {
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
  return Buffer.from(
    JSON.stringify({ error: { message, type: 'upstream_error', param: null, code: String(status) } }),
  );
}
