/**
 * The processor configuration the fuzz suites run against: one route with an OpenAI and an Anthropic endpoint
 * and rules that reach every kind of translation (OpenAI passthrough with and without a model override, OpenAI to
 * Anthropic, to Gemini on Vertex, to Bedrock Converse; Anthropic to OpenAI), with exact, prefix and regex matches.
 */
import type { ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { FIXTURE_BACKENDS } from '../providers/fixture-cases';
import { openAIBackend, testConfig } from './processor-harness';

export const FUZZ_BODY_LIMIT = 4 * 1024 * 1024;

/** Routed model -> the model name the backend gets (only where they differ). */
export const FUZZ_MODEL_OVERRIDES: ReadonlyMap<string, string> = new Map([['gpt-4o', 'gpt-4o-2024-08-06']]);

/** Model names each rule serves (the prefix and regex rules accept any suffix). */
export const FUZZ_MODELS = ['gpt-4o', 'plain', 'claude-3', 'gemini-1.5-pro', 'gemini-x', 'titan-1', 'titan-'] as const;

export const FUZZ_SECRETS: Record<string, Record<string, string>> = {
  anthropic: { apiKey: 'anthropic-api-key' },
  'gcp-token': { token: 'fake-gcp-auth-token' },
  'aws-credentials': { credentials: '[default]\naws_access_key_id=AKIAFUZZ\naws_secret_access_key=fuzz-secret\n' },
};

export function fuzzConfig(overrides: Partial<ProcessorConfig> = {}): ProcessorConfig {
  return testConfig({
    maxRequestBodyBytes: FUZZ_BODY_LIMIT,
    backends: [
      openAIBackend('openai'),
      FIXTURE_BACKENDS.anthropic,
      {
        ...FIXTURE_BACKENDS['gcp-vertexai'],
        auth: { type: 'BearerToken', secret: { secretName: 'gcp-token', key: 'token' } },
      },
      FIXTURE_BACKENDS['aws-bedrock'],
    ],
    routes: [
      {
        name: 'fuzz/chat',
        endpoints: [
          { api: 'OpenAI', pathPrefix: '/v1' },
          { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
        ],
        hostnames: [],
        requiredHeaders: [],
        // The form endpoints the hostile-forms fuzz drives (served only where a route opts in).
        passthroughEndpoints: ['/audio/transcriptions', '/audio/translations', '/images/edits'].map((path) => ({
          path,
          methods: ['POST' as const],
        })),
        rules: [
          {
            models: [{ type: 'Exact', value: 'gpt-4o' }],
            backends: [{ backend: 'openai', weight: 1, priority: 0, modelNameOverride: 'gpt-4o-2024-08-06' }],
          },
          { models: [{ type: 'Exact', value: 'plain' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
          {
            models: [{ type: 'Exact', value: 'claude-3' }],
            backends: [{ backend: 'anthropic', weight: 1, priority: 0 }],
          },
          {
            models: [{ type: 'Prefix', value: 'gemini-' }],
            backends: [{ backend: 'gcp-vertexai', weight: 1, priority: 0 }],
          },
          {
            models: [{ type: 'RegularExpression', value: 'titan-.*' }],
            backends: [{ backend: 'aws-bedrock', weight: 1, priority: 0 }],
          },
        ],
      },
    ],
    circuitBreaker: { failureThreshold: 1_000_000, openDurationMs: 1000 },
    ...overrides,
  });
}
