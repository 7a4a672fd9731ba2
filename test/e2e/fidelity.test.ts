/**
 * Provider-fidelity features (issue 16) through the local data plane (Envoy Gateway's route matching, ext_proc with
 * the real processor, budgets counted in Redis), with the official `openai` and `@anthropic-ai/sdk` clients, against
 * fake providers that check each upstream body against the provider's documented shape and answer like it:
 *
 * - prompt caching: `cache_control` reaches the Anthropic API, Vertex AI and Bedrock InvokeModel unchanged and
 *   Bedrock Converse as `cachePoint` blocks; cache reads and writes come back in the client's usage and are counted
 *   by a budget of cached input tokens and one of total tokens;
 * - structured outputs: `response_format` `json_schema` as Claude's `output_config.format` and Converse's
 *   `outputConfig.textFormat`; `json_object` on Claude is a 422 before any provider call;
 * - reasoning: `reasoning_effort` as Claude's thinking budget (Anthropic API, Vertex AI, InvokeModel, Converse's
 *   `additionalModelRequestFields`) and Gemini's `thinkingConfig`, the thinking back as `reasoning_content` on the
 *   message and on stream deltas; an Anthropic client's `thinking` on Converse, thinking blocks back;
 * - embeddings: Bedrock Titan (one text; several are a 400 pointing at Cohere) and Cohere (a batch), Vertex AI with a
 *   string, an array and one `{content, task_type, title}` instance;
 * - the usage chunk: the route's budget makes the gateway ask providers for usage, yet a streaming client that did
 *   not ask for it gets no `choices: []` chunk (read from the raw SSE), one that asked gets it; both are charged.
 *
 * Every request is charged to both budgets; each test checks that the budgets' Redis counters and the processors'
 * cached-token metric (`gen_ai_client_token_usage`, from the usage they meter) reached the running sums.
 */
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { redisUrlForTests } from '../support/redis';
import {
  answerText,
  CACHE_USAGE,
  DEFAULT_USAGE,
  embeddingTokens,
  fakeEmbedding,
  jsonAnswer,
  THOUGHT,
  THOUGHT_SIGNATURE,
  THOUGHT_TOKENS,
} from './support/fake-providers';
import {
  anthropicClient,
  describeScenario,
  HELLO,
  leakedClientCredentials,
  openAIClient,
  rawChat,
} from './support/clients';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import type { RecordedRequest } from './support/recording-server';
import { countersContaining } from './support/redis';
import { FAKE_CREDENTIALS, FIDELITY_MODELS as M, fidelityScenario, type FakeName } from './support/scenarios';

jest.setTimeout(90_000);

const redisUrl = clusterMode() ? undefined : redisUrlForTests();

const MANUAL = 'You greet people politely. '.repeat(40);
const PARAMETERS = { type: 'object' as const, properties: { name: { type: 'string' } }, required: ['name'] };
const SCHEMA = {
  type: 'object',
  properties: { greeting: { type: 'string' } },
  required: ['greeting'],
  additionalProperties: false,
};

/** Input tokens as OpenAI counts them: the uncached ones plus the cache reads and writes. */
const CACHED_PROMPT_TOKENS = DEFAULT_USAGE.input + CACHE_USAGE.read + CACHE_USAGE.write;
const CACHED_TOTAL_TOKENS = CACHED_PROMPT_TOKENS + DEFAULT_USAGE.output;
const PLAIN_TOTAL_TOKENS = DEFAULT_USAGE.input + DEFAULT_USAGE.output;

const vertexPath = (publisher: string, model: string, method: string) =>
  `/v1/projects/${FAKE_CREDENTIALS.gcpProject}/locations/${FAKE_CREDENTIALS.gcpRegion}/publishers/${publisher}` +
  `/models/${model}:${method}`;

/** The Anthropic Messages body fields every Claude provider receives for HELLO with MANUAL cached. */
const CLAUDE_CACHED_FIELDS = {
  max_tokens: 64,
  system: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral', ttl: '1h' } }],
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello', cache_control: { type: 'ephemeral' } }] }],
  tools: [{ name: 'greet', input_schema: PARAMETERS, cache_control: { type: 'ephemeral' } }],
};

/** `cache_control` is not in the openai SDK's types: the SDK sends it like any other JSON field. */
function cachedOpenAIRequest(model: string): OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming {
  return {
    model,
    max_tokens: 64,
    messages: [
      { role: 'system', content: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral', ttl: '1h' } }] },
      { role: 'user', content: [{ type: 'text', text: 'Say hello', cache_control: { type: 'ephemeral' } }] },
    ],
    tools: [
      { type: 'function', function: { name: 'greet', parameters: PARAMETERS }, cache_control: { type: 'ephemeral' } },
    ],
  } as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
}

type Message = OpenAI.Chat.ChatCompletionMessage & Record<string, unknown>;
type Delta = Record<string, unknown>;

describeScenario('fidelity', () => {
  const namespace = `e2e-fidelity-${randomBytes(4).toString('hex')}`;
  let run: RunningScenario;
  let openai: OpenAI;
  let anthropic: Anthropic;
  /** What the budgets must have counted so far. */
  const charged = { cached: 0, total: 0 };

  beforeAll(async () => {
    run = await startScenario(fidelityScenario(namespace), { redisUrl });
    openai = openAIClient(`${run.gatewayUrl}/v1`);
    anthropic = anthropicClient(`${run.gatewayUrl}/anthropic`);
  });
  afterAll(() => run?.close());
  beforeEach(async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  /** The one request `fake` received since the test began, accepted, without the client's credentials. */
  async function onlyRequest(fake: FakeName): Promise<RecordedRequest> {
    const records = await run.fakes[fake].records();
    expect(records.map((r) => r.rejected)).toEqual([undefined]);
    expect(leakedClientCredentials(records[0])).toEqual([]);
    return records[0];
  }
  const bodyOf = (request: RecordedRequest) => JSON.parse(request.body) as unknown;
  async function noProviderCalled(): Promise<void> {
    for (const fake of Object.values(run.fakes)) expect(await fake.records()).toEqual([]);
  }

  /**
   * The cached input tokens the processors metered (`gen_ai_client_token_usage{gen_ai_token_type="cached_input"}`,
   * from the usage they read and write into the metadata budgets count), over every model; local mode only.
   */
  async function meteredCachedTokens(): Promise<number | undefined> {
    if (!run.processors) return undefined;
    const texts = await Promise.all(
      run.processors.processors.map(async (p) => (await fetch(`http://${p.adminAddress}/metrics`)).text()),
    );
    return texts
      .join('\n')
      .split('\n')
      .filter((line) => line.startsWith('gen_ai_client_token_usage_sum{'))
      .filter((line) => line.includes('gen_ai_token_type="cached_input"'))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf('}') + 1).trim()), 0);
  }

  /**
   * The budgets' Redis counters (cached input tokens, total tokens) and the processors' cached-token metric reach
   * what every request so far charged.
   */
  async function expectCharged(cached: number, total: number): Promise<void> {
    charged.cached += cached;
    charged.total += total;
    const expected = {
      metered: run.processors ? charged.cached : undefined,
      ...(redisUrl ? { cached: charged.cached, total: charged.total } : {}),
    };
    // The budgets' rules in the order they were declared: CachedBudget, then TotalBudget.
    const read = async () => {
      const metered = await meteredCachedTokens();
      if (!redisUrl) return { metered };
      const counters = await countersContaining(redisUrl, `${namespace}/`);
      const sum = (rule: number) =>
        counters.filter((c) => c.key.includes(`/rule/${rule}_`)).reduce((n, c) => n + c.value, 0);
      return { metered, cached: sum(0), total: sum(1) };
    };
    // Charged at stream end, after the answer reached the client.
    for (let i = 0; i < 50; i++) {
      if (JSON.stringify(await read()) === JSON.stringify(expected)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await read()).toEqual(expected);
  }

  describe('prompt caching', () => {
    it.each([
      ['the Anthropic API', M.anthropic.model, 'anthropic', '/v1/messages', { model: M.anthropic.upstream }],
      [
        'Vertex AI (Anthropic)',
        M.gcpAnthropic.model,
        'vertex',
        vertexPath('anthropic', M.gcpAnthropic.upstream, 'rawPredict'),
        { anthropic_version: 'vertex-2023-10-16' },
      ],
      [
        'Bedrock InvokeModel',
        M.awsAnthropic.model,
        'bedrock',
        `/model/${M.awsAnthropic.upstream}/invoke`,
        { anthropic_version: 'bedrock-2023-05-31' },
      ],
    ] as const)(
      'openai SDK -> %s: cache_control as sent, cache usage back and counted',
      async (_, model, fake, path, extra) => {
        const completion = await openai.chat.completions.create(cachedOpenAIRequest(model));
        const upstream = await onlyRequest(fake);
        expect(upstream.path).toBe(path);
        expect(bodyOf(upstream)).toEqual({ ...extra, ...CLAUDE_CACHED_FIELDS });
        expect(completion.usage).toMatchObject({
          prompt_tokens: CACHED_PROMPT_TOKENS,
          completion_tokens: DEFAULT_USAGE.output,
          total_tokens: CACHED_TOTAL_TOKENS,
          prompt_tokens_details: { cached_tokens: CACHE_USAGE.read },
        });
        await expectCharged(CACHE_USAGE.read, CACHED_TOTAL_TOKENS);
      },
    );

    it('openai SDK streaming -> the Anthropic API: the cached tokens in the usage chunk, counted', async () => {
      const stream = await openai.chat.completions.create({
        ...cachedOpenAIRequest(M.anthropic.model),
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage: OpenAI.Completions.CompletionUsage | null | undefined;
      for await (const chunk of stream) usage = chunk.usage ?? usage;
      expect(bodyOf(await onlyRequest('anthropic'))).toEqual({
        model: M.anthropic.upstream,
        ...CLAUDE_CACHED_FIELDS,
        stream: true,
      });
      expect(usage).toMatchObject({
        prompt_tokens: CACHED_PROMPT_TOKENS,
        completion_tokens: DEFAULT_USAGE.output,
        prompt_tokens_details: { cached_tokens: CACHE_USAGE.read },
      });
      await expectCharged(CACHE_USAGE.read, CACHED_TOTAL_TOKENS);
    });

    it('openai SDK -> Bedrock Converse: cachePoint blocks after the marked system block, part and tool', async () => {
      const completion = await openai.chat.completions.create(cachedOpenAIRequest(M.converse.model));
      const upstream = await onlyRequest('bedrock');
      expect(upstream.path).toBe(`/model/${M.converse.upstream}/converse`);
      expect(bodyOf(upstream)).toEqual({
        inferenceConfig: { maxTokens: 64 },
        system: [{ text: MANUAL }, { cachePoint: { type: 'default', ttl: '1h' } }],
        messages: [{ role: 'user', content: [{ text: 'Say hello' }, { cachePoint: { type: 'default' } }] }],
        toolConfig: {
          tools: [
            { toolSpec: { name: 'greet', inputSchema: { json: PARAMETERS } } },
            { cachePoint: { type: 'default' } },
          ],
        },
      });
      expect(completion.usage).toMatchObject({
        prompt_tokens: CACHED_PROMPT_TOKENS,
        completion_tokens: DEFAULT_USAGE.output,
        prompt_tokens_details: { cached_tokens: CACHE_USAGE.read },
      });
      await expectCharged(CACHE_USAGE.read, CACHED_TOTAL_TOKENS);
    });

    it.each([false, true])(
      '@anthropic-ai/sdk -> Bedrock Converse (streamed: %s): cache_control as cachePoint, cache usage back',
      async (streamed) => {
        const params: Anthropic.MessageCreateParamsNonStreaming = {
          model: M.converse.model,
          max_tokens: 64,
          system: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral' } }],
          messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
          tools: [{ name: 'greet', input_schema: PARAMETERS, cache_control: { type: 'ephemeral', ttl: '1h' } }],
        };
        const message = streamed
          ? await anthropic.messages.stream(params).finalMessage()
          : await anthropic.messages.create(params);
        const upstream = await onlyRequest('bedrock');
        expect(upstream.path).toBe(`/model/${M.converse.upstream}/${streamed ? 'converse-stream' : 'converse'}`);
        expect(bodyOf(upstream)).toEqual({
          inferenceConfig: { maxTokens: 64 },
          system: [{ text: MANUAL }, { cachePoint: { type: 'default' } }],
          messages: [{ role: 'user', content: [{ text: 'Say hello' }] }],
          toolConfig: {
            tools: [
              { toolSpec: { name: 'greet', inputSchema: { json: PARAMETERS } } },
              { cachePoint: { type: 'default', ttl: '1h' } },
            ],
          },
        });
        expect(message.usage).toMatchObject({
          input_tokens: DEFAULT_USAGE.input,
          cache_read_input_tokens: CACHE_USAGE.read,
          cache_creation_input_tokens: CACHE_USAGE.write,
          output_tokens: DEFAULT_USAGE.output,
        });
        await expectCharged(CACHE_USAGE.read, CACHED_TOTAL_TOKENS);
      },
    );

    it('without cache breakpoints nothing is read from the cache, and the cached budget counts nothing', async () => {
      const completion = await openai.chat.completions.create({
        model: M.anthropic.model,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Say hello' }],
      });
      expect(bodyOf(await onlyRequest('anthropic'))).not.toHaveProperty('system');
      expect(completion.usage?.prompt_tokens_details?.cached_tokens ?? 0).toBe(0);
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });
  });

  describe('structured outputs', () => {
    const structured = (model: string): OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming => ({
      model,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Say hello' }],
      response_format: { type: 'json_schema', json_schema: { name: 'greeting', schema: SCHEMA, strict: true } },
    });

    it('openai SDK json_schema -> the Anthropic API: output_config.format, the JSON parsed by the SDK', async () => {
      const completion = await openai.chat.completions.parse(structured(M.anthropic.model));
      expect(bodyOf(await onlyRequest('anthropic'))).toEqual({
        model: M.anthropic.upstream,
        max_tokens: 64,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
        output_config: { format: { type: 'json_schema', schema: SCHEMA } },
      });
      expect(completion.choices[0].message.parsed).toEqual(JSON.parse(jsonAnswer('anthropic', M.anthropic.upstream)));
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it.each([false, true])(
      'openai SDK json_schema -> Bedrock Converse (streamed: %s): outputConfig.textFormat, the JSON back',
      async (streamed) => {
        const { stream: _, ...params } = structured(M.converse.model);
        const completion = streamed
          ? await openai.chat.completions.stream(params).finalChatCompletion()
          : await openai.chat.completions.create(params);
        const upstream = await onlyRequest('bedrock');
        expect(upstream.path).toBe(`/model/${M.converse.upstream}/${streamed ? 'converse-stream' : 'converse'}`);
        expect(bodyOf(upstream)).toEqual({
          inferenceConfig: { maxTokens: 64 },
          messages: [{ role: 'user', content: [{ text: 'Say hello' }] }],
          outputConfig: {
            textFormat: {
              type: 'json_schema',
              structure: { jsonSchema: { schema: JSON.stringify(SCHEMA), name: 'greeting' } },
            },
          },
        });
        expect(completion.choices[0].message.content).toBe(jsonAnswer('bedrock', M.converse.upstream));
        await expectCharged(0, PLAIN_TOTAL_TOKENS);
      },
    );

    it.each([
      [M.anthropic.model, 'Anthropic'],
      [M.converse.model, 'AWSBedrock'],
    ])(
      'openai SDK json_object -> %s: 422 naming response_format and the %s backend, no provider call',
      async (model, backend) => {
        const error = await openai.chat.completions
          .create({ ...structured(model), response_format: { type: 'json_object' } })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OpenAI.UnprocessableEntityError);
        expect((error as Error).message).toContain('response_format');
        expect((error as Error).message).toContain(`${backend} backend`);
        await noProviderCalled();
      },
    );
  });

  describe('reasoning', () => {
    const reasoning = (model: string) =>
      ({
        model,
        max_completion_tokens: 4096,
        reasoning_effort: 'low',
        messages: [{ role: 'user', content: 'Say hello' }],
      }) satisfies OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
    /** The deltas of a streamed completion, and its usage chunk. */
    async function streamed(model: string): Promise<{ deltas: Delta[]; usage?: OpenAI.Completions.CompletionUsage }> {
      const stream = await openai.chat.completions.create({
        ...reasoning(model),
        stream: true,
        stream_options: { include_usage: true },
      });
      const deltas: Delta[] = [];
      let usage: OpenAI.Completions.CompletionUsage | undefined;
      for await (const chunk of stream) {
        if (chunk.choices[0]) deltas.push(chunk.choices[0].delta as Delta);
        usage = chunk.usage ?? usage;
      }
      return { deltas, usage };
    }
    const joined = (deltas: Delta[], field: string) => deltas.map((d) => d[field] ?? '').join('');

    it('openai SDK -> the Anthropic API: a thinking budget, the thinking and its signature back', async () => {
      const completion = await openai.chat.completions.create(reasoning(M.anthropic.model));
      expect(bodyOf(await onlyRequest('anthropic'))).toEqual({
        model: M.anthropic.upstream,
        max_tokens: 4096,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
        thinking: { type: 'enabled', budget_tokens: 2048 },
      });
      expect(completion.choices[0].message as Message).toMatchObject({
        content: answerText('anthropic', M.anthropic.upstream),
        reasoning_content: THOUGHT,
        reasoning_signature: THOUGHT_SIGNATURE,
      });
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it.each([
      [
        'Vertex AI (Anthropic)',
        M.gcpAnthropic,
        'vertex',
        vertexPath('anthropic', M.gcpAnthropic.upstream, 'rawPredict'),
        { anthropic_version: 'vertex-2023-10-16' },
      ],
      [
        'Bedrock InvokeModel',
        M.awsAnthropic,
        'bedrock',
        `/model/${M.awsAnthropic.upstream}/invoke`,
        { anthropic_version: 'bedrock-2023-05-31' },
      ],
    ] as const)('openai SDK -> %s: a thinking budget, the thinking back', async (_, entry, fake, path, extra) => {
      const completion = await openai.chat.completions.create(reasoning(entry.model));
      const upstream = await onlyRequest(fake);
      expect(upstream.path).toBe(path);
      expect(bodyOf(upstream)).toEqual({
        ...extra,
        max_tokens: 4096,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
        thinking: { type: 'enabled', budget_tokens: 2048 },
      });
      expect(completion.choices[0].message as Message).toMatchObject({
        content: answerText(fake, entry.upstream),
        reasoning_content: THOUGHT,
        reasoning_signature: THOUGHT_SIGNATURE,
      });
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it('openai SDK streaming -> the Anthropic API: reasoning_content and its signature as deltas', async () => {
      const { deltas } = await streamed(M.anthropic.model);
      expect(bodyOf(await onlyRequest('anthropic'))).toMatchObject({
        stream: true,
        thinking: { type: 'enabled', budget_tokens: 2048 },
      });
      expect(joined(deltas, 'reasoning_content')).toBe(THOUGHT);
      expect(joined(deltas, 'reasoning_signature')).toBe(THOUGHT_SIGNATURE);
      expect(joined(deltas, 'content')).toBe(answerText('anthropic', M.anthropic.upstream));
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it('openai SDK -> Bedrock Converse: additionalModelRequestFields.thinking, the reasoning back', async () => {
      const completion = await openai.chat.completions.create(reasoning(M.converse.model));
      expect(bodyOf(await onlyRequest('bedrock'))).toEqual({
        inferenceConfig: { maxTokens: 4096 },
        messages: [{ role: 'user', content: [{ text: 'Say hello' }] }],
        additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
      });
      expect(completion.choices[0].message as Message).toMatchObject({
        content: answerText('bedrock', M.converse.upstream),
        reasoning_content: THOUGHT,
        reasoning_signature: THOUGHT_SIGNATURE,
      });
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it('openai SDK streaming -> Bedrock ConverseStream: reasoning deltas', async () => {
      const { deltas } = await streamed(M.converse.model);
      const upstream = await onlyRequest('bedrock');
      expect(upstream.path).toBe(`/model/${M.converse.upstream}/converse-stream`);
      expect(bodyOf(upstream)).toMatchObject({
        additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
      });
      expect(joined(deltas, 'reasoning_content')).toBe(THOUGHT);
      expect(joined(deltas, 'reasoning_signature')).toBe(THOUGHT_SIGNATURE);
      expect(joined(deltas, 'content')).toBe(answerText('bedrock', M.converse.upstream));
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it.each([false, true])(
      '@anthropic-ai/sdk thinking -> Bedrock Converse (streamed: %s): thinking blocks with their signature back',
      async (streamed) => {
        const params: Anthropic.MessageCreateParamsNonStreaming = {
          model: M.converse.model,
          max_tokens: 4096,
          thinking: { type: 'enabled', budget_tokens: 2048 },
          messages: [{ role: 'user', content: 'Say hello' }],
        };
        const message = streamed
          ? await anthropic.messages.stream(params).finalMessage()
          : await anthropic.messages.create(params);
        const upstream = await onlyRequest('bedrock');
        expect(upstream.path).toBe(`/model/${M.converse.upstream}/${streamed ? 'converse-stream' : 'converse'}`);
        expect(bodyOf(upstream)).toEqual({
          inferenceConfig: { maxTokens: 4096 },
          messages: [{ role: 'user', content: [{ text: 'Say hello' }] }],
          additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
        });
        expect(message.content).toEqual([
          { type: 'thinking', thinking: THOUGHT, signature: THOUGHT_SIGNATURE },
          expect.objectContaining({ type: 'text', text: answerText('bedrock', M.converse.upstream) }),
        ]);
        await expectCharged(0, PLAIN_TOTAL_TOKENS);
      },
    );

    it('openai SDK -> Gemini: thinkingConfig, thoughts back as reasoning_content and reasoning tokens', async () => {
      const completion = await openai.chat.completions.create(reasoning(M.gemini.model));
      const upstream = await onlyRequest('vertex');
      expect(upstream.path).toBe(vertexPath('google', M.gemini.upstream, 'generateContent'));
      expect(bodyOf(upstream)).toEqual({
        contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }],
        generationConfig: { maxOutputTokens: 4096, thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } },
      });
      expect(completion.choices[0].message as Message).toMatchObject({
        content: answerText('vertex', M.gemini.upstream),
        reasoning_content: THOUGHT,
      });
      expect(completion.usage).toMatchObject({
        completion_tokens: DEFAULT_USAGE.output + THOUGHT_TOKENS,
        completion_tokens_details: { reasoning_tokens: THOUGHT_TOKENS },
      });
      await expectCharged(0, PLAIN_TOTAL_TOKENS + THOUGHT_TOKENS);
    });

    it('openai SDK streaming -> Gemini: reasoning_content deltas, reasoning tokens in the usage chunk', async () => {
      const { deltas, usage } = await streamed(M.gemini.model);
      const upstream = await onlyRequest('vertex');
      expect(upstream.path).toBe(`${vertexPath('google', M.gemini.upstream, 'streamGenerateContent')}?alt=sse`);
      expect(bodyOf(upstream)).toMatchObject({
        generationConfig: { thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } },
      });
      expect(joined(deltas, 'reasoning_content')).toBe(THOUGHT);
      expect(joined(deltas, 'content')).toBe(answerText('vertex', M.gemini.upstream));
      expect(usage).toMatchObject({ completion_tokens_details: { reasoning_tokens: THOUGHT_TOKENS } });
      await expectCharged(0, PLAIN_TOTAL_TOKENS + THOUGHT_TOKENS);
    });
  });

  describe('embeddings', () => {
    it('openai SDK -> Bedrock Titan: one text with dimensions, the vector and its tokens back, counted', async () => {
      const response = await openai.embeddings.create({
        model: M.titan.model,
        input: 'The quick brown fox',
        dimensions: 256,
        encoding_format: 'float',
      });
      const upstream = await onlyRequest('bedrock');
      expect(upstream.path).toBe(`/model/${M.titan.upstream}/invoke`);
      expect(upstream.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=/);
      expect(bodyOf(upstream)).toEqual({ inputText: 'The quick brown fox', dimensions: 256 });
      expect(response).toMatchObject({
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: fakeEmbedding(0) }],
        usage: { prompt_tokens: embeddingTokens('The quick brown fox'), total_tokens: 4 },
      });
      await expectCharged(0, 4);
    });

    it('openai SDK -> Bedrock Titan: the SDK default (base64) decodes to the vector', async () => {
      const response = await openai.embeddings.create({ model: M.titan.model, input: ['one text'] });
      expect(bodyOf(await onlyRequest('bedrock'))).toEqual({ inputText: 'one text' });
      expect(response.data.map((d) => d.embedding)).toEqual([fakeEmbedding(0)]);
      await expectCharged(0, 2);
    });

    it('openai SDK -> Bedrock Titan with several texts: 400 pointing at Cohere, no provider call', async () => {
      const error = await openai.embeddings
        .create({ model: M.titan.model, input: ['first', 'second'], encoding_format: 'float' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as Error).message).toContain('Cohere');
      await noProviderCalled();
    });

    it('openai SDK -> Bedrock Cohere: a batch in one call, a vector per text, counted', async () => {
      const texts = ['first document', 'the second document'];
      const response = await openai.embeddings.create({
        model: M.cohere.model,
        input: texts,
        encoding_format: 'float',
      });
      const upstream = await onlyRequest('bedrock');
      expect(upstream.path).toBe(`/model/${M.cohere.upstream}/invoke`);
      expect(bodyOf(upstream)).toEqual({ texts, input_type: 'search_document' });
      expect(response.data).toEqual([
        { object: 'embedding', index: 0, embedding: fakeEmbedding(0) },
        { object: 'embedding', index: 1, embedding: fakeEmbedding(1) },
      ]);
      expect(response.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
      await expectCharged(0, 5);
    });

    const fox = { content: 'The quick brown fox', task_type: 'RETRIEVAL_DOCUMENT', title: 'Foxes' };
    it.each([
      ['a string', 'The quick brown fox', [{ content: 'The quick brown fox' }]],
      ['an array', ['a fox', 'the lazy dog'], [{ content: 'a fox' }, { content: 'the lazy dog' }]],
      ['one {content, task_type, title} object', fox, [fox]],
    ])('openai SDK -> Vertex AI with %s: predict instances, vectors and tokens back', async (_, input, instances) => {
      const response = await openai.embeddings.create({
        model: M.vertexEmbedding.model,
        input: input as string | string[],
        encoding_format: 'float',
      });
      const upstream = await onlyRequest('vertex');
      expect(upstream.path).toBe(vertexPath('google', M.vertexEmbedding.upstream, 'predict'));
      expect(upstream.headers.authorization).toBe(`Bearer ${FAKE_CREDENTIALS.gcpAccessToken}`);
      expect(bodyOf(upstream)).toEqual({ instances, parameters: {} });
      const tokens = instances.reduce((sum, instance) => sum + embeddingTokens(instance.content), 0);
      expect(response.data).toEqual(
        instances.map((_instance, index) => ({ object: 'embedding', index, embedding: fakeEmbedding(index) })),
      );
      expect(response.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
      await expectCharged(0, tokens);
    });
  });

  describe('the usage chunk on a route with a budget', () => {
    /** A streamed chat sent with fetch; the SSE events' JSON as the client received it. */
    async function rawStream(model: string, includeUsage: boolean): Promise<Record<string, unknown>[]> {
      const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, {
        model,
        messages: HELLO,
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      expect(answer.status).toBe(200);
      const data = answer.text
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice('data: '.length));
      expect(data.at(-1)).toBe('[DONE]');
      return data.slice(0, -1).map((line) => JSON.parse(line) as Record<string, unknown>);
    }
    const usageChunks = (chunks: Record<string, unknown>[]) =>
      chunks.filter((c) => Array.isArray(c.choices) && c.choices.length === 0);

    it.each([
      ['OpenAI', M.openai.model, 'openai'],
      ['Bedrock Converse', M.converse.model, 'bedrock'],
    ] as const)('%s: a client that did not ask gets no usage chunk; the budget is charged', async (_, model, fake) => {
      const chunks = await rawStream(model, false);
      const upstream = bodyOf(await onlyRequest(fake)) as Record<string, unknown>;
      // The gateway asks an OpenAI provider for the usage the budget needs (Converse always reports it).
      if (fake === 'openai') expect(upstream.stream_options).toEqual({ include_usage: true });
      expect(usageChunks(chunks)).toEqual([]);
      expect(chunks.filter((c) => c.usage !== undefined && c.usage !== null)).toEqual([]);
      expect(chunks.map((c) => (c.choices as { delta: { content?: string } }[])[0].delta.content ?? '').join('')).toBe(
        answerText(fake, model === M.openai.model ? M.openai.upstream : M.converse.upstream),
      );
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });

    it.each([
      ['OpenAI', M.openai.model, 'openai'],
      ['Bedrock Converse', M.converse.model, 'bedrock'],
    ] as const)('%s: a client that asked gets the usage chunk last; the budget is charged', async (_, model, fake) => {
      const chunks = await rawStream(model, true);
      await onlyRequest(fake);
      expect(usageChunks(chunks)).toEqual([
        expect.objectContaining({
          usage: expect.objectContaining({
            prompt_tokens: DEFAULT_USAGE.input,
            completion_tokens: DEFAULT_USAGE.output,
            total_tokens: PLAIN_TOTAL_TOKENS,
          }),
        }),
      ]);
      expect(chunks.at(-1)).toBe(usageChunks(chunks)[0]);
      await expectCharged(0, PLAIN_TOTAL_TOKENS);
    });
  });
});
