/**
 * The provider translators, by client API, operation and backend schema (merged into the registry).
 *
 * Behaviour worth knowing (all covered by tests in test/providers and the shared fixture cases):
 * - Usage is normalized the OpenAI way: input = input + cache reads + cache writes (Anthropic, Bedrock),
 *   cached input = cache reads, output includes Gemini thoughts, reasoning = thoughts, total = input + output.
 *   Cache writes are also counted apart (`cacheWriteInput`, and of them the one-hour ones `cacheWrite1hInput`).
 * - Prompt caching: an OpenAI client's `cache_control` (`{type: "ephemeral", ttl?: "5m" | "1h"}`) on content parts,
 *   on a message (its last block) and on tools (or their `function`) reaches the Anthropic API, Vertex Anthropic and
 *   Bedrock InvokeModel as `cache_control` on the same blocks, and Bedrock Converse as a `cachePoint` block after
 *   each marked block, system block or tool (after the whole tool result for a part inside one). Anthropic clients'
 *   `cache_control` passes through to Anthropic backends and becomes `cachePoint` blocks on Converse. A malformed
 *   `cache_control` is answered 400 naming it, never dropped.
 * - Structured outputs on Claude: `response_format` `json_schema` becomes `output_config.format`
 *   (`{type: "json_schema", schema}`) on the Anthropic API, Vertex Anthropic and Bedrock InvokeModel, and
 *   `outputConfig.textFormat` (the schema as a JSON string, with its name and description) on Bedrock Converse, as
 *   does an Anthropic client's `output_config.format` (on OpenAI-schema backends: a strict `response_format`
 *   `json_schema` named `output`); `function.strict` becomes strict tool use and back. `json_object` has no Claude
 *   form (JSON outputs follow a schema whose objects allow no other properties): 422.
 * - Reasoning: an OpenAI client's `reasoning_effort` becomes Claude extended thinking (`thinking: {type: "enabled",
 *   budget_tokens}`, budgets minimal 1024, low 2048, medium 8192, high 24576, xhigh 32768, max: all of max_tokens,
 *   always capped at max_tokens - 1; `none` sends nothing) on the Anthropic API, Vertex Anthropic, Bedrock InvokeModel
 *   and Converse (`additionalModelRequestFields.thinking`, Claude model ids), Nova 2's `reasoningConfig`
 *   (`maxReasoningEffort` low/medium/high) on Converse, and Gemini's `thinkingConfig`. Claude thinking needs an
 *   explicit max_completion_tokens above 1024 (400 otherwise); a Converse model of another family gets 422. Thinking
 *   comes back as `reasoning_content` plus `reasoning_signature` (which the request side reads back into a thinking
 *   block) on the message and on stream deltas; Gemini's thought tokens are the reasoning tokens in usage (Claude
 *   reports none apart from output). A client's own `thinking` object still passes through (e.g. `adaptive`).
 * - Anthropic clients' count_tokens reaches Bedrock's CountTokens (the Converse form on AWSBedrock, the InvokeModel
 *   form, base64, on AWSAnthropic) and Vertex Gemini's countTokens, answered `{"input_tokens": N}` (count-tokens.ts).
 * - Image generation and edits and audio transcription and translation are served on OpenAI and Azure OpenAI
 *   backends (Azure: under `/openai/deployments/{deployment}/`), passed through and metered: GPT image models'
 *   `usage` (`input_tokens` with `input_tokens_details: {text_tokens, image_tokens}`, `output_tokens`) and
 *   token-billed transcription (`usage: {type: "tokens", input_tokens, input_token_details: {audio_tokens,
 *   text_tokens}, output_tokens}`, streamed in `transcript.text.done`) count as input and output tokens whatever
 *   their modality; whisper-1's `{type: "duration", seconds}` and DALL-E's answers carry no tokens and are charged
 *   nothing. Edits and audio are multipart/form-data: routed by the `model` field (and `stream` for audio), read by
 *   a bounded reader (extproc/form-body.ts) that never decodes the files; the body is forwarded as it came, its
 *   `model` value replaced exactly when a rule overrides the model name.
 * - Bedrock embeddings (InvokeModel): Amazon Titan (one text per call; an array of more texts is a 400 pointing at
 *   Cohere) and Cohere embed (batches of up to 96, `input_type` default `search_document`), see bedrock-embeddings.ts.
 * - Vertex embeddings take `input` as a string, one `{content, task_type, title}` instance, or an array of either.
 * - Provider errors keep the provider's status and become `{"type":"error","error":{type,code,message}}`
 *   for OpenAI clients (OpenAI's `error` object, readable by both SDKs) and Anthropic's error shape for
 *   Anthropic clients. Anthropic and Vertex Anthropic errors reach Anthropic clients unchanged.
 * - Requests a backend cannot express are answered 422 naming the parameter (e.g. `n` > 1, `logprobs`,
 *   `logit_bias` on Anthropic and Bedrock; `top_k` on OpenAI backends); out-of-range values are 400.
 * - OpenAI chat on Anthropic backends without max_tokens sends `max_tokens: 0` so the provider answers
 *   with its own 400 (as the reference gateway does) rather than the gateway guessing a limit.
 * - Bedrock Converse answers with several text blocks: the first becomes the message content (the
 *   reference behaviour the shared fixtures pin down); reasoning and tool calls are all kept.
 * - The OpenAI Responses API (`POST /responses`) passes through to OpenAI and Azure OpenAI (usage read from the
 *   Response and `response.completed`). On the Anthropic API, Vertex Anthropic, Bedrock InvokeModel and Converse,
 *   Vertex Gemini and OpenAI-schema servers that speak only Chat Completions (`responsesApi: chatCompletions`,
 *   translate/registry.ts) it is translated statelessly through the backend's chat translator (translate/responses.ts):
 *   `input` (a string, or messages with input_text / input_image / input_file(data) / output_text parts, function_call,
 *   function_call_output and reasoning items), `instructions` (system), flat function tools, tool_choice,
 *   max_output_tokens, temperature, top_p, `text.format` (response_format), `reasoning.effort` (reasoning_effort),
 *   parallel_tool_calls, user and safety_identifier. The answer is a Response object (reasoning, message and
 *   function_call items; `incomplete` for the token limit and content filters) or the Responses event stream, whose
 *   `response.completed` always carries the usage (the chat usage chunk is never passed on); reasoning comes back as
 *   `reasoning_text` content with a Claude signature as `encrypted_content`, read back from the next input. Stored
 *   state (`previous_response_id`, `conversation`, `store: true`, `background`, item references), built-in tools,
 *   uploaded file ids, `include` values other than `reasoning.encrypted_content` and unknown members are answered 422
 *   naming the parameter and the backend; `metadata` is echoed, not sent. A function tool is strict only with an
 *   explicit `strict: true` (the chat translators' rule), and without max_output_tokens Anthropic backends get
 *   `max_tokens: 0` and answer their own 400, as for chat.
 * - Streams end with a usage chunk (when the client asked with `stream_options.include_usage` and the provider
 *   reported usage; the usage is counted either way) and `data: [DONE]`; a cut or corrupt stream ends with an
 *   in-band error event.
 */
import type { TranslatorTable } from '../translate/registry';
import { anthropicMessagesPassthrough, openAIChatToAnthropicBackend } from './anthropic';
import { anthropicMessagesToBedrock, openAIChatToBedrock } from './bedrock';
import { openAIEmbeddingsToBedrockBackend } from './bedrock-embeddings';
import { openAIChatToGeminiBackend, openAIEmbeddingsToVertexBackend } from './gemini';
import { openAIToAzure } from './azure';
import { anthropicMessagesToOpenAI } from './anthropic-to-openai';
import {
  anthropicCountTokensToBedrockBackend,
  anthropicCountTokensToGeminiBackend,
  anthropicCountTokensToInvokeModelBackend,
} from './count-tokens';
import { responsesViaChat } from '../translate/responses';

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
      AWSBedrock: openAIEmbeddingsToBedrockBackend,
      GCPVertexAI: openAIEmbeddingsToVertexBackend,
      AzureOpenAI: openAIToAzure,
    },
    responses: {
      Anthropic: responsesViaChat(openAIChatToAnthropicBackend),
      GCPAnthropic: responsesViaChat(openAIChatToAnthropicBackend),
      AWSAnthropic: responsesViaChat(openAIChatToAnthropicBackend),
      AWSBedrock: responsesViaChat(openAIChatToBedrock),
      GCPVertexAI: responsesViaChat(openAIChatToGeminiBackend),
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
      AWSAnthropic: anthropicCountTokensToInvokeModelBackend,
      AWSBedrock: anthropicCountTokensToBedrockBackend,
      GCPVertexAI: anthropicCountTokensToGeminiBackend,
    },
  },
};
