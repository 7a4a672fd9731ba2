/**
 * Structured outputs on Claude backends, checked against the exact upstream bodies the providers document: OpenAI
 * `response_format` `json_schema` becomes `output_config.format` (`{type: "json_schema", schema}`) on the Anthropic
 * API, Vertex Anthropic and Bedrock InvokeModel, and `outputConfig.textFormat` (the schema as a JSON string) on
 * Bedrock Converse; `function.strict` becomes strict tool use. `json_object` has no Claude form: 422.
 */
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { openAIChatToAnthropicBackend } from '../../src/providers/anthropic';
import { anthropicMessagesToOpenAI } from '../../src/providers/anthropic-to-openai';
import { anthropicMessagesToBedrock, openAIChatToBedrock } from '../../src/providers/bedrock';
import type { TranslationContext } from '../../src/translate/types';

const endpoint = { hostname: 'upstream.test', port: 443, tls: true };
const anthropic: BackendConfig = { name: 'a', schema: { name: 'Anthropic', version: '2023-06-01' }, endpoint };
const vertex: BackendConfig = {
  name: 'v',
  schema: { name: 'GCPAnthropic', projectId: 'p', region: 'r', anthropicVersion: 'vertex-2023-10-16' },
  endpoint,
};
const invoke: BackendConfig = {
  name: 'i',
  schema: { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
  endpoint,
};
const converse: BackendConfig = { name: 'c', schema: { name: 'AWSBedrock' }, endpoint };

function context(backend: BackendConfig, overrides: Partial<TranslationContext> = {}): TranslationContext {
  return {
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '',
    requestModel: 'claude',
    upstreamModel: 'claude-upstream',
    backend,
    stream: false,
    forceStreamUsage: false,
    requestId: 'req-1',
    nowSeconds: 1000,
    ...overrides,
  };
}

const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, celsius: { type: 'number' } },
  required: ['city', 'celsius'],
  additionalProperties: false,
};
const PARAMETERS = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

function request(): Record<string, unknown> {
  return {
    model: 'claude',
    max_tokens: 100,
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'weather', description: 'A forecast', schema: SCHEMA, strict: true },
    },
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: PARAMETERS, strict: true } }],
  };
}

const ANTHROPIC_BODY = {
  max_tokens: 100,
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }],
  tools: [{ name: 'get_weather', input_schema: PARAMETERS, strict: true }],
  output_config: { format: { type: 'json_schema', schema: SCHEMA } },
};

describe('structured outputs: OpenAI chat -> Claude', () => {
  it('Anthropic API, Vertex Anthropic and Bedrock InvokeModel: output_config.format and strict tools', () => {
    expect(openAIChatToAnthropicBackend(context(anthropic)).request(request()).body).toEqual({
      ...ANTHROPIC_BODY,
      model: 'claude-upstream',
    });
    expect(openAIChatToAnthropicBackend(context(vertex)).request(request()).body).toEqual({
      ...ANTHROPIC_BODY,
      anthropic_version: 'vertex-2023-10-16',
    });
    expect(openAIChatToAnthropicBackend(context(invoke)).request(request()).body).toEqual({
      ...ANTHROPIC_BODY,
      anthropic_version: 'bedrock-2023-05-31',
    });
  });

  it('Bedrock Converse: outputConfig.textFormat with the schema as a JSON string, strict toolSpec', () => {
    expect(openAIChatToBedrock(context(converse)).request(request()).body).toEqual({
      inferenceConfig: { maxTokens: 100 },
      messages: [{ role: 'user', content: [{ text: 'Weather in Paris?' }] }],
      toolConfig: { tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: PARAMETERS }, strict: true } }] },
      outputConfig: {
        textFormat: {
          type: 'json_schema',
          structure: { jsonSchema: { schema: JSON.stringify(SCHEMA), name: 'weather', description: 'A forecast' } },
        },
      },
    });
  });

  it('response_format text (or none) adds nothing', () => {
    for (const format of [{ type: 'text' }, null, undefined]) {
      const body = { ...request(), response_format: format, tools: undefined };
      expect(openAIChatToAnthropicBackend(context(anthropic)).request(body).body).not.toHaveProperty('output_config');
      expect(openAIChatToBedrock(context(converse)).request({ ...body }).body).not.toHaveProperty('outputConfig');
    }
  });

  it.each([
    ['json_object', { type: 'json_object' }, 422, /json_object.*json_schema/],
    ['an unknown type', { type: 'grammar' }, 422, /grammar/],
    ['json_schema without a schema', { type: 'json_schema', json_schema: { name: 'x' } }, 400, /schema/],
    ['a string', 'json', 400, /object/],
  ])('answers %s with %d naming response_format and the backend', (_name, format, status, message) => {
    for (const [translator, backend] of [
      [openAIChatToAnthropicBackend(context(anthropic)), 'Anthropic'],
      [openAIChatToBedrock(context(converse)), 'AWSBedrock'],
    ] as const) {
      let error: { status?: number; param?: string; message?: string } | undefined;
      try {
        translator.request({ ...request(), response_format: format });
      } catch (e) {
        error = e as typeof error;
      }
      expect(error).toMatchObject({ status, param: 'response_format' });
      expect(error?.message).toMatch(message);
      if (status === 422) expect(error?.message).toContain(backend);
    }
  });
});

describe('structured outputs: Anthropic Messages clients on Bedrock Converse', () => {
  const anthropicContext = context(converse, { api: 'Anthropic', operation: 'messages', subpath: '/messages' });

  it.each([
    ['output_config.format', { output_config: { format: { type: 'json_schema', schema: SCHEMA } } }],
    ['the beta output_format', { output_format: { type: 'json_schema', schema: SCHEMA } }],
  ])('%s becomes outputConfig.textFormat; strict tools stay strict', (_name, extra) => {
    const upstream = anthropicMessagesToBedrock(anthropicContext).request({
      model: 'claude',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ name: 'get_weather', input_schema: PARAMETERS, strict: true }],
      ...extra,
    });
    expect(upstream.body).toEqual({
      inferenceConfig: { maxTokens: 100 },
      messages: [{ role: 'user', content: [{ text: 'Weather in Paris?' }] }],
      toolConfig: { tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: PARAMETERS }, strict: true } }] },
      outputConfig: {
        textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: JSON.stringify(SCHEMA) } } },
      },
    });
  });

  it('answers 400 for a format it cannot send instead of dropping it', () => {
    expect(() =>
      anthropicMessagesToBedrock(anthropicContext).request({
        model: 'claude',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'x' }],
        output_config: { format: { type: 'json_schema' } },
      }),
    ).toThrow(expect.objectContaining({ status: 400, param: 'output_config.format' }));
  });
});

describe('structured outputs: Anthropic Messages clients on OpenAI backends', () => {
  it('output_config.format becomes a strict response_format json_schema; strict tools stay strict', () => {
    const openai: BackendConfig = { name: 'o', schema: { name: 'OpenAI', pathPrefix: '/v1' }, endpoint };
    const upstream = anthropicMessagesToOpenAI(
      context(openai, { api: 'Anthropic', operation: 'messages', subpath: '/messages' }),
    ).request({
      model: 'gpt-4o',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ name: 'get_weather', input_schema: PARAMETERS, strict: true }],
      output_config: { format: { type: 'json_schema', schema: SCHEMA } },
    });
    expect(upstream.body).toEqual({
      model: 'claude-upstream',
      max_completion_tokens: 100,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: PARAMETERS, strict: true } }],
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema: SCHEMA, strict: true } },
    });
  });
});
