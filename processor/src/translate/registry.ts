/**
 * Which translator serves a (client API, operation, backend schema) triple. Provider translators are added
 * here, one entry per supported triple; a missing entry means the backend cannot serve that request.
 */
import type { BackendSchema } from '../config/schema';
import { openAIPassthrough } from './openai';
import type { ClientApi, Operation, TranslatorFactory } from './types';

export type SchemaName = BackendSchema['name'];

export type TranslatorTable = Partial<Record<ClientApi, Partial<Record<Operation, Partial<Record<SchemaName, TranslatorFactory>>>>>>;

export const TRANSLATORS: TranslatorTable = {
  OpenAI: {
    chat: { OpenAI: openAIPassthrough },
    completions: { OpenAI: openAIPassthrough },
    embeddings: { OpenAI: openAIPassthrough },
    other: { OpenAI: openAIPassthrough },
  },
};

export function findTranslator(
  api: ClientApi,
  operation: Operation,
  schema: SchemaName,
  table: TranslatorTable = TRANSLATORS,
): TranslatorFactory | undefined {
  return table[api]?.[operation]?.[schema];
}
