/** The provider translators, by client API, operation and backend schema (merged into the registry). */
import type { TranslatorTable } from '../translate/registry';
import { anthropicMessagesPassthrough, openAIChatToAnthropicBackend } from './anthropic';
import { anthropicMessagesToBedrock, openAIChatToBedrock } from './bedrock';
import { openAIChatToGeminiBackend, openAIEmbeddingsToVertexBackend } from './gemini';

export const PROVIDER_TRANSLATORS: TranslatorTable = {
  OpenAI: {
    chat: {
      Anthropic: openAIChatToAnthropicBackend,
      GCPAnthropic: openAIChatToAnthropicBackend,
      AWSAnthropic: openAIChatToAnthropicBackend,
      AWSBedrock: openAIChatToBedrock,
      GCPVertexAI: openAIChatToGeminiBackend,
    },
    embeddings: {
      GCPVertexAI: openAIEmbeddingsToVertexBackend,
    },
  },
  Anthropic: {
    messages: {
      Anthropic: anthropicMessagesPassthrough,
      GCPAnthropic: anthropicMessagesPassthrough,
      AWSAnthropic: anthropicMessagesPassthrough,
      AWSBedrock: anthropicMessagesToBedrock,
    },
    count_tokens: {
      Anthropic: anthropicMessagesPassthrough,
      GCPAnthropic: anthropicMessagesPassthrough,
    },
  },
};
