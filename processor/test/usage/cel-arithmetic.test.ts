import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { compileArithmeticCost } from '../../src/usage/cel-arithmetic';
import { compileCelCost } from '../../src/usage/costs';
import type { TokenUsage } from '../../src/translate/types';

const NAMES = ['input_tokens', 'output_tokens', 'total_tokens', 'cached_input_tokens', 'reasoning_tokens'] as const;

/** The reference: the CEL interpreter with the counts bound as CEL ints. */
function celInt(expression: string, u: TokenUsage): bigint | 'error' {
  const program = plan(celEnv(), parse(expression));
  const values = [u.input, u.output, u.total, u.cachedInput, u.reasoning];
  const result = program(Object.fromEntries(NAMES.map((name, i) => [name, BigInt(values[i])])));
  if (isCelError(result)) return 'error';
  if (typeof result !== 'bigint') throw new Error(`unexpected ${typeof result}`);
  return result;
}

/** A small deterministic generator, so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

function randomExpression(next: () => number, depth: number): string {
  const pick = next();
  if (depth === 0 || pick < 0.3) {
    return next() < 0.6
      ? NAMES[Math.floor(next() * NAMES.length)]
      : String(Math.floor(next() * (next() < 0.2 ? 1e6 : 100)));
  }
  if (pick < 0.4) return `-${randomExpression(next, depth - 1)}`;
  if (pick < 0.5) return `(${randomExpression(next, depth - 1)})`;
  const op = ['+', '-', '*'][Math.floor(next() * 3)];
  const space = next() < 0.5 ? ' ' : '';
  return `${randomExpression(next, depth - 1)}${space}${op}${space}${randomExpression(next, depth - 1)}`;
}

function randomUsage(next: () => number): TokenUsage {
  const count = () => {
    const scale = next();
    return Math.floor(next() * (scale < 0.6 ? 10_000 : scale < 0.9 ? 1e9 : 2 ** 62));
  };
  return { input: count(), output: count(), total: count(), cachedInput: count(), reasoning: count() };
}

describe('CEL arithmetic fast path', () => {
  it('agrees with the CEL interpreter on random weighted sums, or hands over when values leave the exact range', () => {
    const next = random(42);
    let fast = 0;
    let handedOver = 0;
    for (let i = 0; i < 400; i++) {
      const expression = randomExpression(next, 4);
      const compiled = compileArithmeticCost(expression);
      expect(compiled).toBeDefined();
      const cost = compileCelCost(expression);
      for (let j = 0; j < 5; j++) {
        const usage = randomUsage(next);
        const quick = compiled!(usage);
        const reference = celInt(expression, usage);
        if (quick === undefined) {
          // Some intermediate value left 2^53: the compiled cost asks the interpreter.
          handedOver++;
          const evaluate = () => cost({ model: 'm', backend: 'b', usage });
          if (reference === 'error') expect(evaluate).toThrow(/failed/);
          else expect(evaluate()).toBe(Math.max(0, Number(reference)));
        } else {
          fast++;
          expect(BigInt(quick)).toBe(reference);
        }
      }
    }
    expect(fast).toBeGreaterThan(1000);
    expect(handedOver).toBeGreaterThan(10);
  });

  it('leaves everything outside the subset to the interpreter', () => {
    for (const expression of [
      'input_tokens / 2',
      'input_tokens % 2',
      '0.5 * input_tokens',
      '4u * input_tokens',
      'uint(3) * input_tokens',
      '0x10 * input_tokens',
      '010 + input_tokens',
      '1e3 * input_tokens',
      'model == "gpt-4o" ? 2 * input_tokens : input_tokens',
      'backend.size() + input_tokens',
      'unknown_tokens + 1',
      'constructor + 1',
      'input_tokens.foo',
      'input_tokens(1)',
      '(input_tokens + 1',
      '1 2',
      '',
    ]) {
      expect(compileArithmeticCost(expression)).toBeUndefined();
    }
  });

  it('gives the compiled cost the interpreter answer when the fast path hands over', () => {
    const cost = compileCelCost('input_tokens * 4 + output_tokens');
    const inputs = (input: number) => ({
      model: 'm',
      backend: 'b',
      usage: { input, output: 1, total: 0, cachedInput: 0, reasoning: 0 },
    });
    expect(cost(inputs(10))).toBe(41);
    // 2^53 * 4 is exact in int64 but beyond 2^53: the interpreter answers.
    expect(cost(inputs(2 ** 53))).toBe(Number(BigInt(2 ** 53) * 4n + 1n));
    // int64 overflow is a CEL error, never a wrapped or rounded number.
    expect(() => cost(inputs(2 ** 62))).toThrow(/failed/);
    expect(compileCelCost('output_tokens - input_tokens')(inputs(5))).toBe(0);
  });
});
