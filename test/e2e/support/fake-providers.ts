/**
 * Fake LLM providers: real HTTP servers that speak each provider's wire format, check the credentials they
 * receive the way the provider does, and answer with realistic bodies (JSON, SSE, AWS eventstream). A request
 * the fake would refuse is answered with the provider's own error status and recorded with `rejected` set, so
 * a test can assert both what the SDK client saw and why.
 *
 * Each answer names the fake and the model it received (`Hello from <fake> (<model>)`), and reports a fixed
 * usage, so tests can check routing, model name overrides and token budgets from the client side.
 */
import type * as http from 'node:http';
import { awsEvent } from './eventstream';
import {
  startRecordingServer,
  writeInParts,
  type RecordedRequest,
  type RecordingServer,
  type ServerTls,
} from './recording-server';
import { sigV4Problem, type AwsKey } from './sigv4';

export interface Usage {
  input: number;
  output: number;
}

export const DEFAULT_USAGE: Usage = { input: 12, output: 8 };

export interface FakeProvider extends RecordingServer {
  readonly name: string;
  /** Requests the fake accepted (auth, path and body as the provider expects). */
  accepted(): RecordedRequest[];
}

interface CommonOptions {
  /** Used in answers and messages. */
  name: string;
  usage?: Usage;
  port?: number;
  host?: string;
  /** Serve HTTPS with this certificate. */
  tls?: ServerTls;
}

/** The text every fake answers with. */
export function answerText(fake: string, model: string): string {
  return `Hello from ${fake} (${model})`;
}

/** Splits a text in two parts for streaming. */
function halves(text: string): [string, string] {
  const at = Math.ceil(text.length / 2);
  return [text.slice(0, at), text.slice(at)];
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function parseBody(request: RecordedRequest): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(request.body) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function reject(
  request: RecordedRequest,
  res: http.ServerResponse,
  status: number,
  why: string,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  request.rejected = why;
  json(res, status, body, headers);
}

async function start(
  options: CommonOptions,
  handle: (request: RecordedRequest, res: http.ServerResponse) => Promise<void> | void,
): Promise<FakeProvider> {
  const server = await startRecordingServer(handle, { port: options.port, host: options.host, tls: options.tls });
  return { ...server, name: options.name, accepted: () => server.requests.filter((r) => r.rejected === undefined) };
}

// ---------------------------------------------------------------------------------------------- OpenAI

export interface OpenAIFakeOptions extends CommonOptions {
  /** `Authorization: Bearer <apiKey>` required; undefined = the fake requires that no credential arrives. */
  apiKey?: string;
  /** Base path of the API, e.g. `/v1` (OpenAI) or `/openai/v1` (Groq). */
  pathPrefix?: string;
}

/** The OpenAI chat completion answer (JSON or SSE with the usage chunk when asked for). */
async function openAIChatAnswer(
  fake: string,
  body: Record<string, unknown>,
  usage: Usage,
  res: http.ServerResponse,
): Promise<void> {
  const model = String(body.model);
  const text = answerText(fake, model);
  const usageObject = {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
  };
  const created = Math.floor(Date.now() / 1000);
  if (body.stream !== true) {
    json(res, 200, {
      id: 'chatcmpl-e2e-1',
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: usageObject,
      system_fingerprint: 'fp_e2e',
    });
    return;
  }
  const chunk = (delta: unknown, finish: string | null) =>
    'data: ' +
    JSON.stringify({
      id: 'chatcmpl-e2e-2',
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    }) +
    '\n\n';
  const [first, second] = halves(text);
  const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  await writeInParts(res, 200, { 'content-type': 'text/event-stream; charset=utf-8' }, [
    chunk({ role: 'assistant', content: '' }, null),
    chunk({ content: first }, null),
    chunk({ content: second }, null),
    chunk({}, 'stop'),
    ...(includeUsage
      ? [
          'data: ' +
            JSON.stringify({
              id: 'chatcmpl-e2e-2',
              object: 'chat.completion.chunk',
              created,
              model,
              choices: [],
              usage: usageObject,
            }) +
            '\n\n',
        ]
      : []),
    'data: [DONE]\n\n',
  ]);
}

function openAIError(request: RecordedRequest, res: http.ServerResponse, status: number, why: string): void {
  reject(request, res, status, why, {
    error: {
      message: why,
      type: 'invalid_request_error',
      param: null,
      code: status === 401 ? 'invalid_api_key' : null,
    },
  });
}

// ------------------------------------------------------------------------------------ images and audio

/** OpenAI's image and audio endpoints (below the API's base path): JSON for generations, forms for the others. */
export const MEDIA_SUBPATHS = ['/images/generations', '/images/edits', '/audio/transcriptions', '/audio/translations'];

/** A form the way the provider reads it; undefined when it is not one. */
async function formOf(request: RecordedRequest): Promise<FormData | undefined> {
  const contentType = request.headers['content-type'] ?? '';
  if (!/^multipart\/form-data;\s*boundary=/.test(contentType)) return undefined;
  try {
    // The recorded body is text: the tests send forms whose files are valid UTF-8 (silent WAV, text).
    return await new Response(Buffer.from(request.body, 'utf8'), {
      headers: { 'content-type': contentType },
    }).formData();
  } catch {
    return undefined;
  }
}

/**
 * The answers of OpenAI's media endpoints, with the usage each model family reports: GPT image models
 * `{input_tokens, input_tokens_details, output_tokens, total_tokens}`, token-billed transcription `{type: "tokens",
 * ...}` (streamed in `transcript.text.done`), whisper `{type: "duration", seconds}`. `deployment`: Azure's model,
 * from the path (the form's or body's `model` is then optional).
 */
async function mediaAnswer(
  fake: string,
  subpath: string,
  request: RecordedRequest,
  res: http.ServerResponse,
  usage: Usage,
  deployment?: string,
): Promise<void> {
  const bad = (why: string) =>
    reject(request, res, 400, `${fake}: ${why}`, {
      error: { message: why, type: 'invalid_request_error', param: null, code: null },
    });
  const total = usage.input + usage.output;
  const imageUsage = {
    input_tokens: usage.input,
    input_tokens_details: { text_tokens: usage.input, image_tokens: 0 },
    output_tokens: usage.output,
    total_tokens: total,
  };
  const image = { b64_json: Buffer.from('fake image').toString('base64') };
  if (subpath === '/images/generations') {
    const body = parseBody(request);
    if (!body || typeof body.prompt !== 'string') return bad('not an image generation request');
    if (deployment === undefined && typeof body.model !== 'string') return bad('no model');
    return json(res, 200, { created: 1736890000, data: [image], usage: imageUsage });
  }
  const form = await formOf(request);
  if (!form) return bad('the body is not multipart/form-data');
  const model = deployment ?? form.get('model');
  if (typeof model !== 'string' || model === '') return bad('no model field');
  if (subpath === '/images/edits') {
    const images = [...form.getAll('image'), ...form.getAll('image[]')];
    if (images.length === 0 || images.some((i) => typeof i === 'string')) return bad('no image file');
    if (typeof form.get('prompt') !== 'string') return bad('no prompt');
    return json(res, 200, { created: 1736890000, data: [image], usage: imageUsage });
  }
  if (!(form.get('file') instanceof Blob)) return bad('no audio file');
  const text = answerText(fake, model);
  if (subpath === '/audio/translations') return json(res, 200, { text });
  if (model.includes('whisper')) return json(res, 200, { text, usage: { type: 'duration', seconds: 1 } });
  const tokens = {
    type: 'tokens',
    input_tokens: usage.input,
    input_token_details: { audio_tokens: usage.input, text_tokens: 0 },
    output_tokens: usage.output,
    total_tokens: total,
  };
  if (form.get('stream') !== 'true') return json(res, 200, { text, usage: tokens });
  const [first, second] = halves(text);
  await writeInParts(res, 200, { 'content-type': 'text/event-stream' }, [
    `data: ${JSON.stringify({ type: 'transcript.text.delta', delta: first })}\n\n`,
    `data: ${JSON.stringify({ type: 'transcript.text.delta', delta: second })}\n\n`,
    `data: ${JSON.stringify({ type: 'transcript.text.done', text, usage: tokens })}\n\n`,
  ]);
}

export function startOpenAIFake(options: OpenAIFakeOptions): Promise<FakeProvider> {
  const prefix = options.pathPrefix ?? '/v1';
  const usage = options.usage ?? DEFAULT_USAGE;
  return start(options, async (request, res) => {
    const authorization = request.headers.authorization;
    if (options.apiKey === undefined) {
      if (authorization !== undefined)
        return openAIError(request, res, 400, `${options.name} expects no credentials, got an authorization header`);
    } else if (authorization !== `Bearer ${options.apiKey}`) {
      return openAIError(request, res, 401, `Incorrect API key provided to ${options.name}`);
    }
    const media = MEDIA_SUBPATHS.find((subpath) => request.path === `${prefix}${subpath}`);
    if (request.method === 'POST' && media !== undefined) return mediaAnswer(options.name, media, request, res, usage);
    if (request.method !== 'POST' || request.path !== `${prefix}/chat/completions`) {
      return openAIError(request, res, 404, `${options.name}: unknown path ${request.method} ${request.path}`);
    }
    const body = parseBody(request);
    if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages))
      return openAIError(request, res, 400, `${options.name}: not a chat completion request`);
    await openAIChatAnswer(options.name, body, usage, res);
  });
}

// ---------------------------------------------------------------------------------------- Azure OpenAI

export interface AzureFakeOptions extends CommonOptions {
  apiVersion: string;
  /** `api-key: <apiKey>` or `Authorization: Bearer <bearerToken>`. */
  auth: { apiKey: string } | { bearerToken: string };
}

const AZURE_PATH = new RegExp(
  '^/openai/deployments/([^/?]+)' +
    '(/chat/completions|/images/(?:generations|edits)|/audio/(?:transcriptions|translations))\\?(.*)$',
);

export function startAzureOpenAIFake(options: AzureFakeOptions): Promise<FakeProvider> {
  const usage = options.usage ?? DEFAULT_USAGE;
  return start(options, async (request, res) => {
    const authorized =
      'apiKey' in options.auth
        ? request.headers['api-key'] === options.auth.apiKey
        : request.headers.authorization === `Bearer ${options.auth.bearerToken}`;
    if (!authorized) {
      return reject(request, res, 401, `${options.name}: missing or wrong credentials`, {
        error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint.' },
      });
    }
    const match = AZURE_PATH.exec(request.path);
    if (request.method !== 'POST' || !match) {
      return reject(request, res, 404, `${options.name}: unknown path ${request.path}`, {
        error: { code: '404', message: 'Resource not found' },
      });
    }
    const apiVersion = new URLSearchParams(match[3]).get('api-version');
    if (apiVersion !== options.apiVersion) {
      return reject(request, res, 400, `${options.name}: api-version ${apiVersion}`, {
        error: { code: 'BadRequest', message: 'API version not supported' },
      });
    }
    if (match[2] !== '/chat/completions')
      return mediaAnswer(options.name, match[2], request, res, usage, decodeURIComponent(match[1]));
    const body = parseBody(request);
    if (!body || !Array.isArray(body.messages))
      return reject(request, res, 400, `${options.name}: not a chat request`, {
        error: { code: 'BadRequest', message: 'bad body' },
      });
    await openAIChatAnswer(options.name, { ...body, model: decodeURIComponent(match[1]) }, usage, res);
  });
}

// ------------------------------------------------------------------------------------------- Anthropic

/** The cache reads and writes a provider reports for a request that marks cache breakpoints. */
export const CACHE_USAGE = { read: 2048, write: 1500 } as const;

/** The thinking a Claude or Gemini fake answers with when asked to reason, and its signature (Claude). */
export const THOUGHT = 'The user wants a greeting, so I greet.';
export const THOUGHT_SIGNATURE = 'sig-e2e-EqQBCgIYAhIM';
/** The thought tokens Gemini reports apart from the answer's. */
export const THOUGHT_TOKENS = 5;

/** The JSON every fake answers with when asked for JSON output following a schema. */
export function jsonAnswer(fake: string, model: string): string {
  return JSON.stringify({ greeting: answerText(fake, model) });
}

/** What a request asked for that changes a Claude (or Converse, or Gemini) answer. */
interface Asked {
  /** Cache breakpoints were marked: the usage reports cache reads and writes. */
  cache: boolean;
  /** Extended thinking (or Gemini's thoughts) was enabled: the answer starts with the thinking. */
  thinking: boolean;
  /** JSON output following a schema was asked for. */
  json: boolean;
}

const NOTHING_ASKED: Asked = { cache: false, thinking: false, json: false };

/** Every value stored under `key` anywhere in `value` (bounded by the request's own size). */
function valuesOf(value: unknown, key: string, found: unknown[] = []): unknown[] {
  if (Array.isArray(value)) for (const item of value) valuesOf(item, key, found);
  else if (value !== null && typeof value === 'object') {
    for (const [name, item] of Object.entries(value)) {
      if (name === key) found.push(item);
      valuesOf(item, key, found);
    }
  }
  return found;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A thinking budget as Anthropic documents it: at least 1024 tokens and less than max_tokens. */
function thinkingProblem(thinking: unknown, maxTokens: unknown, param: string): string | undefined {
  if (!isRecord(thinking)) return `${param}: must be an object`;
  if (thinking.type === 'disabled') return undefined;
  if (thinking.type !== 'enabled') return `${param}.type: must be "enabled" or "disabled"`;
  const budget = thinking.budget_tokens;
  if (typeof budget !== 'number' || !Number.isInteger(budget) || budget < 1024)
    return `${param}.budget_tokens: must be an integer of at least 1024`;
  if (typeof maxTokens === 'number' && budget >= maxTokens)
    return `${param}.budget_tokens: must be less than max_tokens`;
  return undefined;
}

/**
 * What a Claude Messages body asks for, or the problem Anthropic would answer 400 with: `cache_control` must be
 * `{type: "ephemeral", ttl?: "5m" | "1h"}`, `thinking` a budget of at least 1024 tokens below max_tokens,
 * `output_config.format` `{type: "json_schema", schema}`.
 */
function claudeAsked(body: Record<string, unknown>): Asked | string {
  const marks = valuesOf(body, 'cache_control');
  for (const mark of marks) {
    if (!isRecord(mark) || mark.type !== 'ephemeral') return 'cache_control.type: must be "ephemeral"';
    if (mark.ttl !== undefined && mark.ttl !== '5m' && mark.ttl !== '1h') return 'cache_control.ttl: must be 5m or 1h';
    if (Object.keys(mark).some((k) => k !== 'type' && k !== 'ttl')) return 'cache_control: Extra inputs';
  }
  let thinking = false;
  if (body.thinking !== undefined) {
    const problem = thinkingProblem(body.thinking, body.max_tokens, 'thinking');
    if (problem) return problem;
    thinking = (body.thinking as Record<string, unknown>).type === 'enabled';
  }
  let json = false;
  if (body.output_config !== undefined) {
    const format = isRecord(body.output_config) ? body.output_config.format : undefined;
    if (!isRecord(format) || format.type !== 'json_schema' || !isRecord(format.schema))
      return 'output_config.format: must be {"type": "json_schema", "schema": {...}}';
    json = true;
  }
  return { cache: marks.length > 0, thinking, json };
}

/** Anthropic's usage object, with the cache reads and writes when breakpoints were marked. */
function anthropicUsage(usage: Usage, asked: Asked, outputTokens: number): Record<string, number> {
  return {
    input_tokens: usage.input,
    output_tokens: outputTokens,
    cache_creation_input_tokens: asked.cache ? CACHE_USAGE.write : 0,
    cache_read_input_tokens: asked.cache ? CACHE_USAGE.read : 0,
  };
}

/** The Anthropic Messages answer (JSON or SSE events) for `model`. */
async function anthropicAnswer(
  fake: string,
  model: string,
  stream: boolean,
  usage: Usage,
  res: http.ServerResponse,
  asked: Asked = NOTHING_ASKED,
): Promise<void> {
  const text = asked.json ? jsonAnswer(fake, model) : answerText(fake, model);
  if (!stream) {
    json(res, 200, {
      id: 'msg_e2e_1',
      type: 'message',
      role: 'assistant',
      model,
      content: [
        ...(asked.thinking ? [{ type: 'thinking', thinking: THOUGHT, signature: THOUGHT_SIGNATURE }] : []),
        { type: 'text', text },
      ],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: anthropicUsage(usage, asked, usage.output),
    });
    return;
  }
  await writeInParts(
    res,
    200,
    { 'content-type': 'text/event-stream; charset=utf-8' },
    anthropicEvents(model, text, usage, asked).map(
      ({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
    ),
  );
}

function anthropicEvents(
  model: string,
  text: string,
  usage: Usage,
  asked: Asked = NOTHING_ASKED,
): { event: string; data: Record<string, unknown> }[] {
  const [first, second] = halves(text);
  const textIndex = asked.thinking ? 1 : 0;
  const delta = (index: number, value: Record<string, unknown>) => ({
    event: 'content_block_delta',
    data: { type: 'content_block_delta', index, delta: value },
  });
  const [thoughtStart, thoughtEnd] = halves(THOUGHT);
  const thinking = asked.thinking
    ? [
        {
          event: 'content_block_start',
          data: {
            type: 'content_block_start',
            index: 0,
            content_block: { type: 'thinking', thinking: '', signature: '' },
          },
        },
        delta(0, { type: 'thinking_delta', thinking: thoughtStart }),
        delta(0, { type: 'thinking_delta', thinking: thoughtEnd }),
        delta(0, { type: 'signature_delta', signature: THOUGHT_SIGNATURE }),
        { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
      ]
    : [];
  return [
    {
      event: 'message_start',
      data: {
        type: 'message_start',
        message: {
          id: 'msg_e2e_2',
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: anthropicUsage(usage, asked, 1),
        },
      },
    },
    ...thinking,
    {
      event: 'content_block_start',
      data: { type: 'content_block_start', index: textIndex, content_block: { type: 'text', text: '' } },
    },
    { event: 'ping', data: { type: 'ping' } },
    delta(textIndex, { type: 'text_delta', text: first }),
    delta(textIndex, { type: 'text_delta', text: second }),
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: textIndex } },
    {
      event: 'message_delta',
      data: {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: usage.output },
      },
    },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ];
}

function anthropicError(
  request: RecordedRequest,
  res: http.ServerResponse,
  status: number,
  type: string,
  why: string,
): void {
  reject(request, res, status, why, { type: 'error', error: { type, message: why } });
}

/**
 * Anthropic Messages body checks shared by the API, Bedrock InvokeModel and Vertex rawPredict: the problem the
 * provider would answer 400 with, or what the body asks for.
 */
function anthropicBodyProblem(
  body: Record<string, unknown> | undefined,
  expect: { model: 'required' | 'absent'; anthropicVersion?: string },
): string | Asked {
  if (!body) return 'body is not a JSON object';
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  if (expect.model === 'required' && typeof body.model !== 'string') return 'model: Field required';
  if (expect.model === 'absent' && body.model !== undefined) return 'model: Extra inputs are not permitted';
  if (expect.anthropicVersion !== undefined && body.anthropic_version !== expect.anthropicVersion)
    return `anthropic_version must be ${expect.anthropicVersion}`;
  return claudeAsked(body);
}

export interface AnthropicFakeOptions extends CommonOptions {
  apiKey: string;
  /** The `anthropic-version` header the fake requires. */
  version?: string;
}

export function startAnthropicFake(options: AnthropicFakeOptions): Promise<FakeProvider> {
  const usage = options.usage ?? DEFAULT_USAGE;
  const version = options.version ?? '2023-06-01';
  return start(options, async (request, res) => {
    if (request.headers['x-api-key'] !== options.apiKey)
      return anthropicError(request, res, 401, 'authentication_error', 'invalid x-api-key');
    if (request.headers.authorization !== undefined)
      return anthropicError(request, res, 401, 'authentication_error', 'unexpected authorization header');
    if (request.headers['anthropic-version'] !== version)
      return anthropicError(request, res, 400, 'invalid_request_error', `anthropic-version must be ${version}`);
    if (request.method !== 'POST' || request.path !== '/v1/messages')
      return anthropicError(request, res, 404, 'not_found_error', `Not found: ${request.path}`);
    const body = parseBody(request);
    const checked = anthropicBodyProblem(body, { model: 'required' });
    if (typeof checked === 'string') return anthropicError(request, res, 400, 'invalid_request_error', checked);
    await anthropicAnswer(options.name, String(body!.model), body!.stream === true, usage, res, checked);
  });
}

// ------------------------------------------------------------------------ AWS Bedrock (Converse, InvokeModel)

export interface BedrockFakeOptions extends CommonOptions {
  region: string;
  /** The static key the fake verifies signatures with. */
  key: AwsKey;
  /** `anthropic_version` InvokeModel bodies must carry. */
  anthropicVersion?: string;
}

const BEDROCK_PATH = /^\/model\/([^/?]+)\/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)$/;

/** The input tokens the fakes' token-counting APIs answer: one per character of the request body, so tests can tell. */
export function countedTokens(body: string): number {
  return body.length;
}

function awsError(request: RecordedRequest, res: http.ServerResponse, status: number, type: string, why: string): void {
  reject(
    request,
    res,
    status,
    why,
    { message: why },
    { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` },
  );
}

function cutInto(bytes: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return parts;
}

/**
 * What a Converse body asks for, or the ValidationException Bedrock would answer: `cachePoint` blocks are
 * `{type: "default", ttl?: "5m" | "1h"}`, Claude's thinking travels in `additionalModelRequestFields.thinking`
 * (a budget below `inferenceConfig.maxTokens`), JSON output in `outputConfig.textFormat` with the schema as a
 * JSON string.
 */
function converseAsked(body: Record<string, unknown>): Asked | string {
  const points = valuesOf(body, 'cachePoint');
  for (const point of points) {
    if (!isRecord(point) || point.type !== 'default') return 'cachePoint.type: must be "default"';
    if (point.ttl !== undefined && point.ttl !== '5m' && point.ttl !== '1h') return 'cachePoint.ttl: must be 5m or 1h';
  }
  if (valuesOf(body, 'cache_control').length > 0) return 'cache_control is not a Converse field';
  let thinking = false;
  const extra = body.additionalModelRequestFields;
  if (extra !== undefined) {
    if (!isRecord(extra)) return 'additionalModelRequestFields: must be an object';
    if (extra.thinking !== undefined) {
      const maxTokens = isRecord(body.inferenceConfig) ? body.inferenceConfig.maxTokens : undefined;
      const problem = thinkingProblem(extra.thinking, maxTokens, 'thinking');
      if (problem) return problem;
      thinking = (extra.thinking as Record<string, unknown>).type === 'enabled';
    }
  }
  let json = false;
  if (body.outputConfig !== undefined) {
    const format = isRecord(body.outputConfig) ? body.outputConfig.textFormat : undefined;
    const structure = isRecord(format) && isRecord(format.structure) ? format.structure.jsonSchema : undefined;
    if (!isRecord(format) || format.type !== 'json_schema' || !isRecord(structure))
      return 'outputConfig.textFormat: must be {type: "json_schema", structure: {jsonSchema: {...}}}';
    try {
      if (typeof structure.schema !== 'string' || !isRecord(JSON.parse(structure.schema))) throw new Error();
    } catch {
      return 'outputConfig.textFormat.structure.jsonSchema.schema: must be a JSON schema as a string';
    }
    json = true;
  }
  return { cache: points.length > 0, thinking, json };
}

/** The tokens the embeddings fakes count for a text: one per word, so tests can tell. */
export function embeddingTokens(text: string): number {
  return text.split(/\s+/).filter((word) => word !== '').length;
}

/** The vector the embeddings fakes answer for the `index`th text (exactly representable as float32). */
export function fakeEmbedding(index: number): number[] {
  return [index + 0.5, -0.25, 0.125];
}

const TITAN_FIELDS = new Set(['inputText', 'dimensions', 'normalize', 'embeddingTypes']);
const COHERE_FIELDS = new Set(['texts', 'images', 'input_type', 'truncate', 'embedding_types', 'output_dimension']);
const COHERE_INPUT_TYPES = new Set(['search_document', 'search_query', 'classification', 'clustering', 'image']);

/**
 * InvokeModel on an embedding model, as Bedrock documents the bodies: Amazon Titan Text Embeddings
 * (`{inputText, dimensions?, normalize?}` -> `{embedding, inputTextTokenCount}`) and Cohere Embed
 * (`{texts (at most 96), input_type}` -> `{id, texts, embeddings, response_type}`); the input tokens also in the
 * `x-amzn-bedrock-input-token-count` header.
 */
function bedrockEmbeddingAnswer(
  model: string,
  body: Record<string, unknown> | undefined,
  request: RecordedRequest,
  res: http.ServerResponse,
): void {
  const bad = (why: string) => awsError(request, res, 400, 'ValidationException', why);
  const headers = (tokens: number) => ({
    'x-amzn-requestid': 'e2e-request-id',
    'x-amzn-bedrock-input-token-count': String(tokens),
  });
  if (model.startsWith('amazon.titan-embed')) {
    if (!body || typeof body.inputText !== 'string') return bad('#: required key [inputText] not found');
    const extra = Object.keys(body).find((key) => !TITAN_FIELDS.has(key));
    if (extra !== undefined) return bad(`#: extraneous key [${extra}] is not permitted`);
    if (body.dimensions !== undefined && ![256, 512, 1024].includes(body.dimensions as number))
      return bad('#/dimensions: must be 256, 512 or 1024');
    const tokens = embeddingTokens(body.inputText);
    return json(res, 200, { embedding: fakeEmbedding(0), inputTextTokenCount: tokens }, headers(tokens));
  }
  if (model.startsWith('cohere.embed')) {
    if (!body || !Array.isArray(body.texts) || body.texts.some((t) => typeof t !== 'string'))
      return bad('texts: must be an array of strings');
    if (body.texts.length > 96) return bad('texts: at most 96 texts');
    if (typeof body.input_type !== 'string' || !COHERE_INPUT_TYPES.has(body.input_type))
      return bad('input_type: required, one of search_document, search_query, classification, clustering');
    const extra = Object.keys(body).find((key) => !COHERE_FIELDS.has(key));
    if (extra !== undefined) return bad(`extraneous key [${extra}] is not permitted`);
    const texts = body.texts as string[];
    const tokens = texts.reduce((sum, t) => sum + embeddingTokens(t), 0);
    return json(
      res,
      200,
      {
        id: 'e2e-embed-1',
        texts,
        embeddings: texts.map((_, i) => fakeEmbedding(i)),
        response_type: 'embeddings_floats',
      },
      headers(tokens),
    );
  }
  return bad(`${model} is not an embedding model`);
}

export function startBedrockFake(options: BedrockFakeOptions): Promise<FakeProvider> {
  const usage = options.usage ?? DEFAULT_USAGE;
  const anthropicVersion = options.anthropicVersion ?? 'bedrock-2023-05-31';
  return start(options, async (request, res) => {
    const problem = await sigV4Problem(request, options.key, options.region, 'bedrock');
    if (problem) return awsError(request, res, 403, 'InvalidSignatureException', `${options.name}: ${problem}`);
    const match = BEDROCK_PATH.exec(request.path);
    if (request.method !== 'POST' || !match)
      return awsError(
        request,
        res,
        404,
        'UnknownOperationException',
        `${options.name}: unknown operation ${request.path}`,
      );
    const model = decodeURIComponent(match[1]);
    const operation = match[2];
    const body = parseBody(request);
    const text = answerText(options.name, model);
    const amzHeaders = { 'x-amzn-requestid': 'e2e-request-id' };

    if (operation === 'count-tokens') {
      // CountTokens: the Converse form, or the InvokeModel body base64-encoded (a blob in AWS's JSON protocol).
      const input = body?.input as { converse?: Record<string, unknown>; invokeModel?: { body?: unknown } } | undefined;
      if (input?.converse !== undefined && Array.isArray(input.converse.messages) && input.invokeModel === undefined)
        return json(res, 200, { inputTokens: countedTokens(request.body) }, amzHeaders);
      if (input?.invokeModel !== undefined && typeof input.invokeModel.body === 'string') {
        let invoke: Record<string, unknown> | undefined;
        try {
          invoke = JSON.parse(Buffer.from(input.invokeModel.body, 'base64').toString('utf8')) as Record<
            string,
            unknown
          >;
        } catch {
          invoke = undefined;
        }
        const invokeProblem = anthropicBodyProblem(invoke, { model: 'absent', anthropicVersion });
        if (typeof invokeProblem === 'string') return awsError(request, res, 400, 'ValidationException', invokeProblem);
        return json(res, 200, { inputTokens: countedTokens(request.body) }, amzHeaders);
      }
      return awsError(request, res, 400, 'ValidationException', 'input must hold converse or invokeModel');
    }

    if (operation === 'invoke' && (model.startsWith('amazon.titan-embed') || model.startsWith('cohere.embed')))
      return bedrockEmbeddingAnswer(model, body, request, res);
    if (operation === 'invoke' || operation === 'invoke-with-response-stream') {
      const asked = anthropicBodyProblem(body, { model: 'absent', anthropicVersion });
      if (typeof asked === 'string') return awsError(request, res, 400, 'ValidationException', asked);
      if (operation === 'invoke') return anthropicAnswer(options.name, model, false, usage, res, asked);
      const events = anthropicEvents(model, asked.json ? jsonAnswer(options.name, model) : text, usage, asked);
      // InvokeModelWithResponseStream: one `chunk` event per Anthropic event, its JSON base64-encoded in `bytes`;
      // the last carries Bedrock's invocation metrics.
      const frames = events.map(({ data }, i) =>
        awsEvent('chunk', {
          bytes: Buffer.from(
            JSON.stringify(
              i === events.length - 1
                ? {
                    ...data,
                    'amazon-bedrock-invocationMetrics': {
                      inputTokenCount: usage.input,
                      outputTokenCount: usage.output,
                      invocationLatency: 20,
                      firstByteLatency: 10,
                    },
                  }
                : data,
            ),
          ).toString('base64'),
        }),
      );
      return writeInParts(
        res,
        200,
        { 'content-type': 'application/vnd.amazon.eventstream', ...amzHeaders },
        cutInto(Buffer.concat(frames), 53),
      );
    }

    if (!body || !Array.isArray(body.messages) || body.model !== undefined)
      return awsError(request, res, 400, 'ValidationException', 'not a Converse request');
    const asked = converseAsked(body);
    if (typeof asked === 'string') return awsError(request, res, 400, 'ValidationException', asked);
    const answer = asked.json ? jsonAnswer(options.name, model) : text;
    const cache = asked.cache
      ? { cacheReadInputTokens: CACHE_USAGE.read, cacheWriteInputTokens: CACHE_USAGE.write }
      : {};
    const awsUsage = {
      inputTokens: usage.input,
      outputTokens: usage.output,
      totalTokens: usage.input + usage.output + (asked.cache ? CACHE_USAGE.read + CACHE_USAGE.write : 0),
      ...cache,
    };
    if (operation === 'converse') {
      const reasoning = { reasoningContent: { reasoningText: { text: THOUGHT, signature: THOUGHT_SIGNATURE } } };
      return json(
        res,
        200,
        {
          output: {
            message: { role: 'assistant', content: [...(asked.thinking ? [reasoning] : []), { text: answer }] },
          },
          stopReason: 'end_turn',
          usage: awsUsage,
          metrics: { latencyMs: 20 },
        },
        amzHeaders,
      );
    }
    const [first, second] = halves(answer);
    const [thoughtStart, thoughtEnd] = halves(THOUGHT);
    const textIndex = asked.thinking ? 1 : 0;
    const frames = Buffer.concat([
      awsEvent('messageStart', { role: 'assistant' }),
      ...(asked.thinking
        ? [
            awsEvent('contentBlockDelta', {
              contentBlockIndex: 0,
              delta: { reasoningContent: { text: thoughtStart } },
            }),
            awsEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: thoughtEnd } } }),
            awsEvent('contentBlockDelta', {
              contentBlockIndex: 0,
              delta: { reasoningContent: { signature: THOUGHT_SIGNATURE } },
            }),
            awsEvent('contentBlockStop', { contentBlockIndex: 0 }),
          ]
        : []),
      awsEvent('contentBlockDelta', { contentBlockIndex: textIndex, delta: { text: first } }),
      awsEvent('contentBlockDelta', { contentBlockIndex: textIndex, delta: { text: second } }),
      awsEvent('contentBlockStop', { contentBlockIndex: textIndex }),
      awsEvent('messageStop', { stopReason: 'end_turn' }),
      awsEvent('metadata', { usage: awsUsage, metrics: { latencyMs: 20 } }),
    ]);
    // Frames cut at arbitrary places, as TCP would deliver them.
    return writeInParts(
      res,
      200,
      { 'content-type': 'application/vnd.amazon.eventstream', ...amzHeaders },
      cutInto(frames, 41),
    );
  });
}

// ------------------------------------------------------------------------- GCP Vertex AI (Gemini, Anthropic)

export interface VertexFakeOptions extends CommonOptions {
  projectId: string;
  region: string;
  /** The access token the fake OAuth endpoint hands out. */
  accessToken: string;
  anthropicVersion?: string;
}

const VERTEX_PATH =
  /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:?]+):(generateContent|streamGenerateContent|countTokens|predict|rawPredict|streamRawPredict)(\?.*)?$/;

function googleError(
  request: RecordedRequest,
  res: http.ServerResponse,
  status: number,
  statusName: string,
  why: string,
): void {
  reject(request, res, status, why, [{ error: { code: status, message: why, status: statusName } }]);
}

/**
 * What a generateContent body asks for, or the INVALID_ARGUMENT Vertex would answer: thoughts with
 * `generationConfig.thinkingConfig.includeThoughts` (an integer `thinkingBudget`), JSON with `responseMimeType`
 * `application/json` and a `responseJsonSchema` object.
 */
function geminiAsked(body: Record<string, unknown>): Asked | string {
  const config = body.generationConfig;
  if (config === undefined) return NOTHING_ASKED;
  if (!isRecord(config)) return 'generationConfig: must be an object';
  let thinking = false;
  if (config.thinkingConfig !== undefined) {
    const thinkingConfig = config.thinkingConfig;
    if (!isRecord(thinkingConfig)) return 'generationConfig.thinkingConfig: must be an object';
    const budget = thinkingConfig.thinkingBudget;
    if (budget !== undefined && (typeof budget !== 'number' || !Number.isInteger(budget)))
      return 'generationConfig.thinkingConfig.thinkingBudget: must be an integer';
    thinking = thinkingConfig.includeThoughts === true;
  }
  if (config.responseJsonSchema !== undefined && config.responseMimeType !== 'application/json')
    return 'responseJsonSchema needs responseMimeType application/json';
  return { cache: false, thinking, json: isRecord(config.responseJsonSchema) };
}

const VERTEX_TASK_TYPES = new Set([
  'RETRIEVAL_QUERY',
  'RETRIEVAL_DOCUMENT',
  'SEMANTIC_SIMILARITY',
  'CLASSIFICATION',
  'CLUSTERING',
  'QUESTION_ANSWERING',
  'FACT_VERIFICATION',
  'CODE_RETRIEVAL_QUERY',
]);

/**
 * Vertex AI text embeddings (`:predict`), as documented: `instances` of `{content, task_type?, title?}` (a title
 * only with task_type RETRIEVAL_DOCUMENT), optional `parameters` (`autoTruncate`, `outputDimensionality`); each
 * prediction carries its values and token count.
 */
function vertexEmbeddingAnswer(
  body: Record<string, unknown> | undefined,
  request: RecordedRequest,
  res: http.ServerResponse,
): void {
  const bad = (why: string) => googleError(request, res, 400, 'INVALID_ARGUMENT', why);
  if (!body || !Array.isArray(body.instances) || body.instances.length === 0) return bad('instances is required');
  const extra = Object.keys(body).find((key) => key !== 'instances' && key !== 'parameters');
  if (extra !== undefined) return bad(`Invalid JSON payload received. Unknown name "${extra}"`);
  for (const instance of body.instances as unknown[]) {
    if (!isRecord(instance) || typeof instance.content !== 'string') return bad('instances[].content is required');
    const unknown = Object.keys(instance).find((key) => !['content', 'task_type', 'title'].includes(key));
    if (unknown !== undefined) return bad(`instances[]: unknown field ${unknown}`);
    if (instance.task_type !== undefined && !VERTEX_TASK_TYPES.has(instance.task_type as string))
      return bad(`instances[].task_type: unknown ${String(instance.task_type)}`);
    if (instance.title !== undefined && instance.task_type !== 'RETRIEVAL_DOCUMENT')
      return bad('instances[].title is only valid with task_type RETRIEVAL_DOCUMENT');
  }
  if (body.parameters !== undefined && !isRecord(body.parameters)) return bad('parameters must be an object');
  const instances = body.instances as { content: string }[];
  json(res, 200, {
    predictions: instances.map((instance, i) => ({
      embeddings: {
        values: fakeEmbedding(i),
        statistics: { token_count: embeddingTokens(instance.content), truncated: false },
      },
    })),
    metadata: { billableCharacterCount: instances.reduce((sum, instance) => sum + instance.content.length, 0) },
  });
}

export function startVertexFake(options: VertexFakeOptions): Promise<FakeProvider> {
  const usage = options.usage ?? DEFAULT_USAGE;
  const anthropicVersion = options.anthropicVersion ?? 'vertex-2023-10-16';
  return start(options, async (request, res) => {
    if (request.headers.authorization !== `Bearer ${options.accessToken}`) {
      return googleError(
        request,
        res,
        401,
        'UNAUTHENTICATED',
        'Request had invalid authentication credentials. Expected OAuth 2 access token.',
      );
    }
    const match = VERTEX_PATH.exec(request.path);
    if (request.method !== 'POST' || !match)
      return googleError(request, res, 404, 'NOT_FOUND', `unknown path ${request.path}`);
    const [, project, region, publisher, encodedModel, method, query] = match;
    if (project !== options.projectId || region !== options.region)
      return googleError(request, res, 403, 'PERMISSION_DENIED', `no access to ${project}/${region}`);
    const model = decodeURIComponent(encodedModel);
    const body = parseBody(request);

    if (publisher === 'anthropic') {
      if (method !== 'rawPredict' && method !== 'streamRawPredict')
        return googleError(request, res, 400, 'INVALID_ARGUMENT', `${method} is not served for Anthropic models`);
      const asked = anthropicBodyProblem(body, { model: 'absent', anthropicVersion });
      if (typeof asked === 'string') return googleError(request, res, 400, 'INVALID_ARGUMENT', asked);
      return anthropicAnswer(options.name, model, method === 'streamRawPredict', usage, res, asked);
    }

    if (method === 'predict') return vertexEmbeddingAnswer(body, request, res);
    if (method !== 'generateContent' && method !== 'streamGenerateContent' && method !== 'countTokens')
      return googleError(request, res, 400, 'INVALID_ARGUMENT', `${method} is not served for Gemini models`);
    if (!body || !Array.isArray(body.contents))
      return googleError(request, res, 400, 'INVALID_ARGUMENT', 'contents is required');
    if (method === 'countTokens') {
      if (body.generationConfig !== undefined)
        return googleError(request, res, 400, 'INVALID_ARGUMENT', 'countTokens takes no generationConfig');
      return json(res, 200, { totalTokens: countedTokens(request.body), totalBillableCharacters: 0 });
    }
    const asked = geminiAsked(body);
    if (typeof asked === 'string') return googleError(request, res, 400, 'INVALID_ARGUMENT', asked);
    const text = asked.json ? jsonAnswer(options.name, model) : answerText(options.name, model);
    const thoughts = asked.thinking ? THOUGHT_TOKENS : 0;
    const usageMetadata = {
      promptTokenCount: usage.input,
      candidatesTokenCount: usage.output,
      ...(asked.thinking ? { thoughtsTokenCount: THOUGHT_TOKENS } : {}),
      totalTokenCount: usage.input + usage.output + thoughts,
    };
    const thought = asked.thinking ? [{ text: THOUGHT, thought: true }] : [];
    if (method === 'generateContent') {
      return json(res, 200, {
        candidates: [
          { content: { role: 'model', parts: [...thought, { text }] }, finishReason: 'STOP', avgLogprobs: -0.1 },
        ],
        usageMetadata,
        modelVersion: model,
        createTime: new Date().toISOString(),
        responseId: 'vertex-e2e-1',
      });
    }
    if (query !== '?alt=sse')
      return googleError(
        request,
        res,
        400,
        'INVALID_ARGUMENT',
        `streamGenerateContent without alt=sse (query ${query ?? 'none'})`,
      );
    const [first, second] = halves(text);
    const data = (value: unknown) => `data: ${JSON.stringify(value)}\r\n\r\n`;
    return writeInParts(res, 200, { 'content-type': 'text/event-stream' }, [
      data({
        candidates: [{ content: { role: 'model', parts: [...thought, { text: first }] } }],
        modelVersion: model,
        responseId: 'vertex-e2e-2',
      }),
      data({
        candidates: [{ content: { role: 'model', parts: [{ text: second }] }, finishReason: 'STOP' }],
        usageMetadata,
        modelVersion: model,
        responseId: 'vertex-e2e-2',
      }),
    ]);
  });
}

// ---------------------------------------------------------------------------- GCP token endpoint (STS)

export interface GcpTokenFakeOptions extends CommonOptions {
  /** The subject token the workload presents (the content of its credential_source file). */
  subjectToken: string;
  /** The access token handed out. */
  accessToken: string;
}

/**
 * Google's Security Token Service token exchange (`POST /v1/token`), which application default credentials
 * of type `external_account` (workload identity federation) call at their `token_url`.
 */
export function startGcpTokenFake(options: GcpTokenFakeOptions): Promise<FakeProvider> {
  return start(options, (request, res) => {
    const form = new URLSearchParams(request.body);
    if (request.method !== 'POST' || request.path !== '/v1/token')
      return reject(request, res, 404, `unknown path ${request.path}`, { error: 'not_found' });
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange')
      return reject(request, res, 400, 'bad grant_type', { error: 'invalid_grant' });
    if (form.get('subject_token') !== options.subjectToken)
      return reject(request, res, 401, 'unknown subject token', {
        error: 'invalid_grant',
        error_description: 'subject token rejected',
      });
    if (!(form.get('scope') ?? '').split(' ').includes('https://www.googleapis.com/auth/cloud-platform'))
      return reject(request, res, 400, 'scope cloud-platform missing', { error: 'invalid_scope' });
    json(res, 200, {
      access_token: options.accessToken,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 3600,
    });
  });
}

/**
 * The application-default-credentials file (`GOOGLE_APPLICATION_CREDENTIALS`) that sends the processor to the fake STS.
 */
export function gcpExternalAccountCredentials(tokenUrl: string, subjectTokenFile: string): Record<string, unknown> {
  return {
    type: 'external_account',
    audience: '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/e2e/providers/e2e',
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: tokenUrl,
    credential_source: { file: subjectTokenFile, format: { type: 'text' } },
  };
}
