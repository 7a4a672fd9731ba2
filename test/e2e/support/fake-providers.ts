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

/** The Anthropic Messages answer (JSON or SSE events) for `model`. */
async function anthropicAnswer(
  fake: string,
  model: string,
  stream: boolean,
  usage: Usage,
  res: http.ServerResponse,
): Promise<void> {
  const text = answerText(fake, model);
  if (!stream) {
    json(res, 200, {
      id: 'msg_e2e_1',
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: usage.input,
        output_tokens: usage.output,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    });
    return;
  }
  await writeInParts(
    res,
    200,
    { 'content-type': 'text/event-stream; charset=utf-8' },
    anthropicEvents(model, text, usage).map(({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
  );
}

function anthropicEvents(
  model: string,
  text: string,
  usage: Usage,
): { event: string; data: Record<string, unknown> }[] {
  const [first, second] = halves(text);
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
          usage: {
            input_tokens: usage.input,
            output_tokens: 1,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
          },
        },
      },
    },
    {
      event: 'content_block_start',
      data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    },
    { event: 'ping', data: { type: 'ping' } },
    {
      event: 'content_block_delta',
      data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: first } },
    },
    {
      event: 'content_block_delta',
      data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: second } },
    },
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
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

/** Anthropic Messages body checks shared by the API, Bedrock InvokeModel and Vertex rawPredict. */
function anthropicBodyProblem(
  body: Record<string, unknown> | undefined,
  expect: { model: 'required' | 'absent'; anthropicVersion?: string },
): string | undefined {
  if (!body) return 'body is not a JSON object';
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  if (expect.model === 'required' && typeof body.model !== 'string') return 'model: Field required';
  if (expect.model === 'absent' && body.model !== undefined) return 'model: Extra inputs are not permitted';
  if (expect.anthropicVersion !== undefined && body.anthropic_version !== expect.anthropicVersion)
    return `anthropic_version must be ${expect.anthropicVersion}`;
  return undefined;
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
    const problem = anthropicBodyProblem(body, { model: 'required' });
    if (problem) return anthropicError(request, res, 400, 'invalid_request_error', problem);
    await anthropicAnswer(options.name, String(body!.model), body!.stream === true, usage, res);
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

const BEDROCK_PATH = /^\/model\/([^/?]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/;

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

    if (operation === 'invoke' || operation === 'invoke-with-response-stream') {
      const bodyProblem = anthropicBodyProblem(body, { model: 'absent', anthropicVersion });
      if (bodyProblem) return awsError(request, res, 400, 'ValidationException', bodyProblem);
      if (operation === 'invoke') return anthropicAnswer(options.name, model, false, usage, res);
      const events = anthropicEvents(model, text, usage);
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
    const awsUsage = { inputTokens: usage.input, outputTokens: usage.output, totalTokens: usage.input + usage.output };
    if (operation === 'converse') {
      return json(
        res,
        200,
        {
          output: { message: { role: 'assistant', content: [{ text }] } },
          stopReason: 'end_turn',
          usage: awsUsage,
          metrics: { latencyMs: 20 },
        },
        amzHeaders,
      );
    }
    const [first, second] = halves(text);
    const frames = Buffer.concat([
      awsEvent('messageStart', { role: 'assistant' }),
      awsEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: first } }),
      awsEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: second } }),
      awsEvent('contentBlockStop', { contentBlockIndex: 0 }),
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
  /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:?]+):(generateContent|streamGenerateContent|rawPredict|streamRawPredict)(\?.*)?$/;

function googleError(
  request: RecordedRequest,
  res: http.ServerResponse,
  status: number,
  statusName: string,
  why: string,
): void {
  reject(request, res, status, why, [{ error: { code: status, message: why, status: statusName } }]);
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
      const problem = anthropicBodyProblem(body, { model: 'absent', anthropicVersion });
      if (problem) return googleError(request, res, 400, 'INVALID_ARGUMENT', problem);
      return anthropicAnswer(options.name, model, method === 'streamRawPredict', usage, res);
    }

    if (method !== 'generateContent' && method !== 'streamGenerateContent')
      return googleError(request, res, 400, 'INVALID_ARGUMENT', `${method} is not served for Gemini models`);
    if (!body || !Array.isArray(body.contents))
      return googleError(request, res, 400, 'INVALID_ARGUMENT', 'contents is required');
    const text = answerText(options.name, model);
    const usageMetadata = {
      promptTokenCount: usage.input,
      candidatesTokenCount: usage.output,
      totalTokenCount: usage.input + usage.output,
    };
    if (method === 'generateContent') {
      return json(res, 200, {
        candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', avgLogprobs: -0.1 }],
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
        candidates: [{ content: { role: 'model', parts: [{ text: first }] } }],
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
