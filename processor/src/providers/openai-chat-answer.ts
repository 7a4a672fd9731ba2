/**
 * The OpenAI chat answer the Anthropic and Bedrock Converse translators write: one builder of the assistant message
 * from the provider's content blocks, and the `chat.completion` around it.
 */
import type { TranslationContext } from '../translate/types';
import type { ChatCompletion, ChatResponseMessage, ChatToolCall, ChatUsage } from './wire/openai-chat';

/**
 * Collects an answer's text (all text blocks, in order), reasoning with its signature (the last one given) and tool
 * calls into the chat message.
 */
export class ChatMessageBuilder {
  private content: string | undefined;
  private reasoning: string | undefined;
  private signature: string | undefined;
  private readonly toolCalls: ChatToolCall[] = [];

  text(text: string): void {
    this.content = (this.content ?? '') + text;
  }

  reasoningText(text: string): void {
    this.reasoning = (this.reasoning ?? '') + text;
  }

  /** A reasoning signature; undefined keeps the one before. */
  reasoningSignature(signature: string | undefined): void {
    if (signature !== undefined) this.signature = signature;
  }

  /** A tool call; its arguments are the JSON of the provider's `input` object. */
  toolCall(id: string, name: string, input: unknown): void {
    this.toolCalls.push({ id, type: 'function', function: { name, arguments: JSON.stringify(input ?? {}) } });
  }

  message(): ChatResponseMessage {
    const out: ChatResponseMessage = { role: 'assistant' };
    if (this.content !== undefined) out.content = this.content;
    if (this.reasoning !== undefined) out.reasoning_content = this.reasoning;
    // Sent back with the reasoning on the next turn (Claude checks it), as the request reader reads it.
    if (this.reasoning !== undefined && this.signature) out.reasoning_signature = this.signature;
    if (this.toolCalls.length > 0) out.tool_calls = this.toolCalls;
    return out;
  }
}

/** A one-choice `chat.completion` for the client's model name, created now. */
export function chatCompletion(
  id: string,
  context: TranslationContext,
  message: ChatResponseMessage,
  finishReason: string,
  usage: ChatUsage,
): ChatCompletion {
  return {
    id,
    object: 'chat.completion',
    created: context.nowSeconds,
    model: context.requestModel,
    choices: [{ index: 0, message, finish_reason: finishReason }],
    usage,
  };
}
