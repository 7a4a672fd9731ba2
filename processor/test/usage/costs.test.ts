import { compileCost, compileCelCost, CostCompileError } from '../../src/usage/costs';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import { UsageMetadata } from '../../src/usage/metadata';

const struct = loadProtoRoot().lookupType('google.protobuf.Struct');

const usage = { input: 10, output: 20, total: 30, cachedInput: 4, reasoning: 6 };
const inputs = { model: 'gpt-4o', backend: 'openai', usage };

describe('costs', () => {
  it('maps the token types', () => {
    const value = (type: 'InputToken' | 'OutputToken' | 'TotalToken' | 'CachedInputToken' | 'ReasoningToken') =>
      compileCost({ metadataKey: 'k', type }).evaluate(inputs);
    expect([
      value('InputToken'),
      value('OutputToken'),
      value('TotalToken'),
      value('CachedInputToken'),
      value('ReasoningToken'),
    ]).toEqual([10, 20, 30, 4, 6]);
  });

  it('evaluates CEL over the counts, the model and the backend', () => {
    expect(compileCelCost('input_tokens + 4 * output_tokens')(inputs)).toBe(90);
    expect(
      compileCelCost('(input_tokens - cached_input_tokens) + cached_input_tokens / 2 + reasoning_tokens')(inputs),
    ).toBe(14);
    expect(compileCelCost('model == "gpt-4o" ? total_tokens * 2 : total_tokens')(inputs)).toBe(60);
    expect(compileCelCost('backend.startsWith("open") ? 1 : 0')(inputs)).toBe(1);
  });

  it('accepts expressions written for uint or double counts', () => {
    expect(compileCelCost('input_tokens * uint(3) + output_tokens')(inputs)).toBe(50);
    expect(compileCelCost('input_tokens * 0.5 + output_tokens * 1.5')(inputs)).toBe(35);
  });

  it('rejects expressions that do not compile or do not yield a number, at compile time', () => {
    expect(() => compileCelCost('input_tokens +')).toThrow(CostCompileError);
    expect(() => compileCelCost('unknown_variable + 1')).toThrow(/cannot be evaluated/);
    expect(() => compileCelCost('model')).toThrow(/must evaluate to a number/);
  });

  it('writes 0 and reports when an expression fails for one response', () => {
    const divide = compileCost({ metadataKey: 'ratio', type: 'CEL', expression: 'input_tokens / output_tokens' });
    const errors: string[] = [];
    const bytes = new UsageMetadata([divide]).encode({ ...inputs, usage: { ...usage, output: 0 } }, (key) =>
      errors.push(key),
    );
    const metadata = struct.toObject(struct.decode(bytes)) as {
      fields: Record<string, { structValue: { fields: Record<string, unknown> } }>;
    };
    expect(metadata.fields['io.envoy.ai_gateway'].structValue.fields).toEqual({
      llm_input_token: { numberValue: 10 },
      llm_output_token: { numberValue: 0 },
      llm_total_token: { numberValue: 30 },
      llm_cached_input_token: { numberValue: 4 },
      llm_reasoning_token: { numberValue: 6 },
      ratio: { numberValue: 0 },
    });
    expect(errors).toEqual(['ratio']);
  });

  it('encodes zero usage once per model and backend, and every other usage each time', () => {
    const metadata = new UsageMetadata([
      compileCost({ metadataKey: 'ratio', type: 'CEL', expression: 'output_tokens / input_tokens' }),
    ]);
    const errors: string[] = [];
    const zero = { input: 0, output: 0, total: 0, cachedInput: 0, reasoning: 0 };
    const first = metadata.encode({ ...inputs, usage: zero }, (key) => errors.push(key));
    expect(metadata.encode({ ...inputs, usage: zero }, (key) => errors.push(key))).toBe(first);
    expect(errors).toEqual(['ratio']); // division by zero, reported once for this model and backend
    expect(metadata.encode({ ...inputs, backend: 'other', usage: zero })).not.toBe(first);
    const counted = metadata.encode(inputs);
    expect(metadata.encode(inputs)).not.toBe(counted);
    expect(metadata.encode(inputs)).toEqual(counted);
  });

  it('clamps negative costs to 0', () => {
    expect(compileCelCost('output_tokens - input_tokens * 5')(inputs)).toBe(0);
  });
});
