/**
 * Malformed client bodies never crash a translator: each either translates or throws a TranslationError
 * (answered 4xx in the client's schema), never a TypeError (which would become a 500).
 */
import { PROVIDER_TRANSLATORS } from '../../src/providers';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import {
  TranslationError,
  type ClientApi,
  type Operation,
  type TranslationContext,
  type TranslatorFactory,
} from '../../src/translate/types';

const endpoint = { hostname: 'h', port: 443, tls: true };
const BACKENDS: Record<string, BackendConfig> = {
  Anthropic: { name: 'a', schema: { name: 'Anthropic', version: 'v' }, endpoint },
  GCPAnthropic: {
    name: 'b',
    schema: { name: 'GCPAnthropic', projectId: 'p', region: 'r', anthropicVersion: 'v' },
    endpoint,
  },
  AWSAnthropic: { name: 'c', schema: { name: 'AWSAnthropic', anthropicVersion: 'v' }, endpoint },
  AWSBedrock: { name: 'd', schema: { name: 'AWSBedrock' }, endpoint },
  GCPVertexAI: { name: 'e', schema: { name: 'GCPVertexAI', projectId: 'p', region: 'r' }, endpoint },
  AzureOpenAI: { name: 'f', schema: { name: 'AzureOpenAI', apiVersion: 'v' }, endpoint },
  OpenAI: { name: 'g', schema: { name: 'OpenAI', pathPrefix: '/v1' }, endpoint },
};

const WEIRD_VALUES: unknown[] = [null, 0, 'x', true, [], {}, [null], [1], ['s'], [{}], [{ role: 1 }], { a: 1 }];

function bodies(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [{}];
  const fields = [
    'messages',
    'tools',
    'tool_choice',
    'stop',
    'max_tokens',
    'temperature',
    'system',
    'input',
    'stop_sequences',
    'response_format',
    'n',
  ];
  for (const field of fields)
    for (const value of WEIRD_VALUES) out.push({ messages: [{ role: 'user', content: 'hi' }], [field]: value });
  const messageShapes: unknown[] = [
    { role: 'user', content: [{ type: 'image_url' }] },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: 5 } }] },
    { role: 'user', content: [{ type: 'text' }] },
    { role: 'assistant', content: null },
    { role: 'assistant', tool_calls: [null] },
    { role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '[1]' } }] },
    { role: 'tool', content: 'x' },
    { role: 'tool', tool_call_id: 'a', content: [{ type: 'image_url', image_url: {} }] },
    { role: 'user', content: [{ type: 'tool_result', content: 5 }] },
    { role: 'assistant', content: [{ type: 'tool_use' }] },
    { role: 'user', content: [{ type: 'image', source: null }] },
    { role: 'system', content: 7 },
  ];
  for (const message of messageShapes) out.push({ messages: [message], max_tokens: 5 });
  return out;
}

function context(api: ClientApi, operation: Operation, backend: BackendConfig): TranslationContext {
  return {
    api,
    operation,
    subpath: '/x',
    query: '',
    requestModel: 'm',
    upstreamModel: 'm',
    backend,
    stream: false,
    forceStreamUsage: false,
    requestId: 'r',
    nowSeconds: 1,
  };
}

describe('malformed requests', () => {
  for (const [api, operations] of Object.entries(PROVIDER_TRANSLATORS) as [
    ClientApi,
    Record<Operation, Record<string, unknown>>,
  ][]) {
    for (const [operation, bySchema] of Object.entries(operations) as [Operation, Record<string, unknown>][]) {
      for (const schema of Object.keys(bySchema)) {
        it(`${api} ${operation} -> ${schema}`, () => {
          const factory = (PROVIDER_TRANSLATORS[api]![operation] as Record<string, TranslatorFactory>)[schema];
          let rejected = 0;
          for (const body of bodies()) {
            try {
              factory(context(api, operation, BACKENDS[schema])).request(structuredClone(body));
            } catch (error) {
              if (!(error instanceof TranslationError))
                throw new Error(`${JSON.stringify(body)}: ${(error as Error).stack}`, { cause: error });
              expect(error.status === 400 || error.status === 422).toBe(true);
              rejected++;
            }
          }
          // Passthroughs (Azure for OpenAI clients, Anthropic-family backends for Anthropic clients) leave
          // validation to the provider; every translating pair rejects some of these bodies.
          const passthrough =
            schema === 'AzureOpenAI' ? api === 'OpenAI' : api === 'Anthropic' && schema.includes('Anthropic');
          if (!passthrough) expect(rejected).toBeGreaterThan(5);
        });
      }
    }
  }
});

describe('malformed provider answers', () => {
  const jsonBodies = [
    '',
    'not json',
    'null',
    '5',
    '[]',
    '{"choices":5}',
    '{"candidates":"x","usageMetadata":7}',
    '{"output":{"message":{"content":[null,5,{"toolUse":3}]}}}',
    '{"content":[{"type":"tool_use","input":null}],"usage":"x"}',
    '{"predictions":[null,{"embeddings":5}]}',
  ];
  const streamBodies = [
    'data: not json\n\ndata: {"candidates":[null]}\n\nevent: message_delta\ndata: ' +
      '{"type":"message_delta","delta":null,"usage":5}\n\ndata: ' +
      '{"choices":[{"delta":{"tool_calls":[null,{"function":5}]}}]}\n\n',
    '\u0000\u0000\u0000\u0010garbage-bytes-not-an-eventstream',
  ];
  for (const [api, operations] of Object.entries(PROVIDER_TRANSLATORS) as [
    ClientApi,
    Record<Operation, Record<string, TranslatorFactory>>,
  ][]) {
    for (const [operation, bySchema] of Object.entries(operations) as [
      Operation,
      Record<string, TranslatorFactory>,
    ][]) {
      for (const [schema, factory] of Object.entries(bySchema)) {
        it(`${api} ${operation} <- ${schema}`, () => {
          for (const stream of [false, true]) {
            for (const text of stream ? streamBodies : jsonBodies) {
              const ctx = { ...context(api, operation, BACKENDS[schema]), stream };
              const response = factory(ctx).response();
              const contentType = stream
                ? schema.startsWith('AWS')
                  ? 'application/vnd.amazon.eventstream'
                  : 'text/event-stream'
                : 'application/json';
              response.head(200, { 'content-type': contentType });
              const bytes = Buffer.from(text);
              expect(() => {
                response.body(bytes.subarray(0, 7), false);
                response.body(bytes.subarray(7), true);
              }).not.toThrow();
              expect(typeof response.usage.total).toBe('number');
            }
          }
        });
      }
    }
  }
});

describe('client-chosen model names in upstream paths', () => {
  // Under prefix or regex rules the client picks the model, and several providers put it in the path.
  const hostile = ['../../other-project/models/x', 'a/b', 'm?key=v', 'm#f', 'm%2F..%2Fx', 'm n', 'mödel'];
  // The Responses translation refuses members it does not know (as OpenAI does): it gets its own shape.
  const body = (operation: Operation) =>
    operation === 'responses'
      ? { input: 'hi', max_output_tokens: 5 }
      : {
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 5,
          input: 'hi',
          instances: [{ content: 'hi' }],
        };
  for (const [api, operations] of Object.entries(PROVIDER_TRANSLATORS) as [
    ClientApi,
    Record<Operation, Record<string, TranslatorFactory>>,
  ][]) {
    for (const [operation, bySchema] of Object.entries(operations) as [
      Operation,
      Record<string, TranslatorFactory>,
    ][]) {
      for (const [schema, factory] of Object.entries(bySchema)) {
        it(`${api} ${operation} -> ${schema}: the model stays inside one path segment`, () => {
          // Bedrock embeddings pick the request shape by model family: the names carry a Cohere embed prefix.
          const named = (model: string) =>
            operation === 'embeddings' && schema === 'AWSBedrock' ? `cohere.embed-${model}` : model;
          const base = context(api, operation, BACKENDS[schema]);
          const reference = factory({
            ...base,
            requestModel: named(base.requestModel),
            upstreamModel: named('m'),
          }).request(body(operation)).path;
          for (const model of hostile) {
            let path: string;
            try {
              path = factory({
                ...base,
                requestModel: named(model),
                upstreamModel: named(model),
              }).request(body(operation)).path;
            } catch (error) {
              expect(error).toBeInstanceOf(TranslationError);
              continue;
            }
            const [pathOnly, query] = path.split('?');
            // The same number of segments as with a plain model name, the same query, and no raw fragment or space.
            expect(pathOnly.split('/').length).toBe(reference.split('?')[0].split('/').length);
            expect(query).toBe(reference.split('?')[1]);
            expect(path).not.toMatch(/[# ]|\.\.\//);
          }
        });
      }
    }
  }

  it.each([['.'], ['..']])('rejects %s where the model is a path segment', (model) => {
    const factory = (PROVIDER_TRANSLATORS.OpenAI!.chat as Record<string, TranslatorFactory>).AWSBedrock;
    expect(() =>
      factory({ ...context('OpenAI', 'chat', BACKENDS.AWSBedrock), upstreamModel: model }).request(body('chat')),
    ).toThrow(TranslationError);
  });
});
