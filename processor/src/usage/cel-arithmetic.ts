import type { TokenUsage } from '../translate/types';

/**
 * Most cost expressions are weighted sums of token counts (`input_tokens + 4 * output_tokens`). For
 * expressions made only of the count variables, decimal int literals, `+`, `-`, `*`, unary minus and
 * parentheses, this compiles a plain function instead of running the CEL interpreter per response.
 *
 * CEL ints are 64-bit and overflow is an error; JavaScript numbers are exact up to 2^53. The function
 * returns undefined as soon as any intermediate value leaves the safe integer range, and the caller then
 * evaluates the real CEL program, so results are always CEL's.
 */
export type ArithmeticCost = (usage: TokenUsage) => number | undefined;

const COUNTS: Readonly<Record<string, (usage: TokenUsage) => number>> = {
  input_tokens: (u) => u.input,
  output_tokens: (u) => u.output,
  total_tokens: (u) => u.total,
  cached_input_tokens: (u) => u.cachedInput,
  reasoning_tokens: (u) => u.reasoning,
};

type Node = (usage: TokenUsage) => number | undefined;

function checked(value: number): number | undefined {
  return Number.isSafeInteger(value) ? value : undefined;
}

const add = (x: number, y: number): number => x + y;
const subtract = (x: number, y: number): number => x - y;
const multiply = (x: number, y: number): number => x * y;

function binary(left: Node, right: Node, op: (x: number, y: number) => number): Node {
  return (usage) => {
    const x = left(usage);
    if (x === undefined) return undefined;
    const y = right(usage);
    return y === undefined ? undefined : checked(op(x, y));
  };
}

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  /** Undefined when the expression is outside the subset (or is not valid CEL at all). */
  parse(): Node | undefined {
    const node = this.sum();
    this.skipSpace();
    return node && this.pos === this.text.length ? node : undefined;
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  private take(char: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] !== char) return false;
    this.pos++;
    return true;
  }

  private sum(): Node | undefined {
    let left = this.product();
    while (left) {
      const op = this.take('+') ? add : this.take('-') ? subtract : undefined;
      if (!op) break;
      const right = this.product();
      left = right && binary(left, right, op);
    }
    return left;
  }

  private product(): Node | undefined {
    let left = this.unary();
    while (left && this.take('*')) {
      const right = this.unary();
      left = right && binary(left, right, multiply);
    }
    return left;
  }

  private unary(): Node | undefined {
    if (this.take('-')) {
      const operand = this.unary();
      // 0 - x, so -0 never appears (CEL ints have no negative zero).
      return (
        operand &&
        ((u) => {
          const x = operand(u);
          return x === undefined ? undefined : 0 - x;
        })
      );
    }
    if (this.take('(')) {
      const inner = this.sum();
      return inner && this.take(')') ? inner : undefined;
    }
    this.skipSpace();
    const rest = this.text.slice(this.pos);
    const literal = /^[0-9]+(?![0-9A-Za-z_.])/.exec(rest);
    if (literal) {
      this.pos += literal[0].length;
      // A leading 0 is only valid CEL as the literal 0 itself; 0x.. hex never matches the lookahead above.
      if (literal[0].length > 1 && literal[0].startsWith('0')) return undefined;
      const value = Number(literal[0]);
      return Number.isSafeInteger(value) ? () => value : undefined;
    }
    const identifier = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (identifier) {
      this.pos += identifier[0].length;
      const name = identifier[0];
      this.skipSpace();
      // Other variables, calls and member access (`f(...)`, `input_tokens.foo`) are outside the subset.
      if (!Object.hasOwn(COUNTS, name) || this.text[this.pos] === '(' || this.text[this.pos] === '.') return undefined;
      return COUNTS[name];
    }
    return undefined;
  }
}

export function compileArithmeticCost(expression: string): ArithmeticCost | undefined {
  return new Parser(expression).parse();
}
