/**
 * The Bedrock CountTokens body of an Anthropic count_tokens request on an InvokeModel (AWSAnthropic) backend:
 * `{input: {invokeModel: {body}}}` with the InvokeModel body Claude on Bedrock reads, base64-encoded (a blob in AWS's
 * JSON protocol).
 */
import { anthropicCountTokensToInvokeModel } from '../../src/providers/count-tokens';

function decoded(body: Record<string, unknown>): unknown {
  const out = anthropicCountTokensToInvokeModel(body, 'bedrock-2023-05-31') as {
    input: { invokeModel: { body: string } };
  };
  expect(Object.keys(out)).toEqual(['input']);
  expect(Object.keys(out.input)).toEqual(['invokeModel']);
  return JSON.parse(Buffer.from(out.input.invokeModel.body, 'base64').toString('utf8'));
}

describe('anthropicCountTokensToInvokeModel', () => {
  it('drops model and stream, adds anthropic_version and max_tokens 1, keeps every other field as sent', () => {
    const system = [{ type: 'text', text: 'Be terse.', cache_control: { type: 'ephemeral' } }];
    const messages = [{ role: 'user', content: 'Grüße 👋' }];
    const thinking = { type: 'enabled', budget_tokens: 2048 };
    expect(decoded({ model: 'claude', stream: true, system, messages, thinking })).toEqual({
      system,
      messages,
      thinking,
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 1,
    });
  });

  it("keeps the client's own max_tokens", () => {
    expect(decoded({ model: 'claude', max_tokens: 4096, messages: [] })).toMatchObject({ max_tokens: 4096 });
  });
});
