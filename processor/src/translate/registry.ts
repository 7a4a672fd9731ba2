/**
 * Which translator serves a (client API, operation, backend schema) triple. Provider translators are added
 * here, one entry per supported triple; a missing entry means the backend cannot serve that request.
 */
import type { BackendSchema } from '@ai-gateway-constructs/processor-config';
import { PROVIDER_TRANSLATORS } from '../providers';
import { openAIPassthrough } from './openai';
import { responsesViaChat } from './responses';
import type { ClientApi, Operation, TranslatorFactory } from './types';

export type SchemaName = BackendSchema['name'];

export type TranslatorTable = Partial<
  Record<ClientApi, Partial<Record<Operation, Partial<Record<SchemaName, TranslatorFactory>>>>>
>;

/** OpenAI's own Responses API passes through; a server that speaks only Chat Completions gets it translated. */
const responsesOverChat = responsesViaChat(openAIPassthrough);
const openAIResponses: TranslatorFactory = (context) =>
  context.backend.schema.name === 'OpenAI' && context.backend.schema.responsesApi === 'chatCompletions'
    ? responsesOverChat(context)
    : openAIPassthrough(context);

const OPENAI_TRANSLATORS: TranslatorTable = {
  OpenAI: {
    chat: { OpenAI: openAIPassthrough },
    completions: { OpenAI: openAIPassthrough },
    embeddings: { OpenAI: openAIPassthrough },
    responses: { OpenAI: openAIResponses },
    other: { OpenAI: openAIPassthrough },
  },
};

/** Deep-merges translator tables; later tables win for the same triple. */
export function mergeTranslatorTables(...tables: TranslatorTable[]): TranslatorTable {
  const merged: TranslatorTable = {};
  for (const table of tables) {
    for (const api of Object.keys(table) as ClientApi[]) {
      const operations = (merged[api] ??= {});
      for (const operation of Object.keys(table[api]!) as Operation[]) {
        operations[operation] = { ...operations[operation], ...table[api]![operation] };
      }
    }
  }
  return merged;
}

/** OpenAI passthrough plus the provider translators (src/providers). */
export const TRANSLATORS: TranslatorTable = mergeTranslatorTables(OPENAI_TRANSLATORS, PROVIDER_TRANSLATORS);

export function findTranslator(
  api: ClientApi,
  operation: Operation,
  schema: SchemaName,
  table: TranslatorTable = TRANSLATORS,
): TranslatorFactory | undefined {
  return table[api]?.[operation]?.[schema];
}
