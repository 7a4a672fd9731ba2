/** The provider translators, by client API, operation and backend schema (merged into the registry). */
import type { TranslatorTable } from '../translate/registry';
import { anthropicMessagesPassthrough, openAIChatToAnthropicBackend } from './anthropic';

export const PROVIDER_TRANSLATORS: TranslatorTable = {
  OpenAI: {
    chat: {
      Anthropic: openAIChatToAnthropicBackend,
      GCPAnthropic: openAIChatToAnthropicBackend,
      AWSAnthropic: openAIChatToAnthropicBackend,
    },
  },
  Anthropic: {
    messages: {
      Anthropic: anthropicMessagesPassthrough,
      GCPAnthropic: anthropicMessagesPassthrough,
      AWSAnthropic: anthropicMessagesPassthrough,
    },
    count_tokens: {
      Anthropic: anthropicMessagesPassthrough,
      GCPAnthropic: anthropicMessagesPassthrough,
    },
  },
};
