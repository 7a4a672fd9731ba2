/** The provider translators, by client API, operation and backend schema (merged into the registry). */
import type { TranslatorTable } from '../translate/registry';
import { anthropicMessagesPassthrough, openAIChatToAnthropicBackend } from './anthropic';
import { anthropicMessagesToBedrock, openAIChatToBedrock } from './bedrock';
import { openAIChatToGeminiBackend, openAIEmbeddingsToVertexBackend } from './gemini';
import { openAIToAzure } from './azure';
import { anthropicMessagesToOpenAI } from './anthropic-to-openai';

export const PROVIDER_TRANSLATORS: TranslatorTable = {
  OpenAI: {
    chat: {
      Anthropic: openAIChatToAnthropicBackend,
      GCPAnthropic: openAIChatToAnthropicBackend,
      AWSAnthropic: openAIChatToAnthropicBackend,
      AWSBedrock: openAIChatToBedrock,
      GCPVertexAI: openAIChatToGeminiBackend,
      AzureOpenAI: openAIToAzure,
    },
    completions: { AzureOpenAI: openAIToAzure },
    embeddings: {
      GCPVertexAI: openAIEmbeddingsToVertexBackend,
      AzureOpenAI: openAIToAzure,
    },
    other: { AzureOpenAI: openAIToAzure },
  },
  Anthropic: {
    messages: {
      Anthropic: anthropicMessagesPassthrough,
      GCPAnthropic: anthropicMessagesPassthrough,
      AWSAnthropic: anthropicMessagesPassthrough,
      AWSBedrock: anthropicMessagesToBedrock,
      OpenAI: anthropicMessagesToOpenAI,
      AzureOpenAI: anthropicMessagesToOpenAI,
    },
    count_tokens: {
      Anthropic: anthropicMessagesPassthrough,
      GCPAnthropic: anthropicMessagesPassthrough,
    },
  },
};
