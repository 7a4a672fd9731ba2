import { MAX_REQUEST_COST, METADATA_NAMESPACE, TOKEN_METADATA_KEYS } from '@ai-gateway-constructs/processor-config';
import { NumberStructLayout } from '../grpc/encode';
import type { EncodedStruct } from '../grpc/messages';
import type { CompiledCost, CostInputs } from './costs';

const TOKEN_KEYS = [
  TOKEN_METADATA_KEYS.input,
  TOKEN_METADATA_KEYS.output,
  TOKEN_METADATA_KEYS.total,
  TOKEN_METADATA_KEYS.cachedInput,
  TOKEN_METADATA_KEYS.reasoning,
] as const;

const MAX_ZERO_ENTRIES = 1000;
/** Bound on the zero-usage cache's key characters plus encoded bytes. */
const MAX_ZERO_BYTES = 512 * 1024;

type CostErrorListener = (key: string, error: Error) => void;

/**
 * The `io.envoy.ai_gateway` dynamic metadata of one config: the five token counts and every configured
 * cost, always numbers (a missing value makes Envoy skip the budget charge). A failing CEL cost writes 0
 * and reports through `onCostError`.
 */
export class UsageMetadata {
  private readonly layout: NumberStructLayout;
  /** Zero usage (local replies, response headers) is the common case: encoded once per model and backend. */
  private readonly zero = new Map<string, EncodedStruct>();
  private zeroSize = 0;

  /** Characters of the zero-usage cache's keys plus bytes of its encoded structs. */
  get cachedBytes(): number {
    return this.zeroSize;
  }

  constructor(private readonly costs: readonly CompiledCost[]) {
    this.layout = new NumberStructLayout(METADATA_NAMESPACE, [...TOKEN_KEYS, ...costs.map((cost) => cost.metadataKey)]);
  }

  encode(inputs: CostInputs, onCostError?: CostErrorListener): EncodedStruct {
    const u = inputs.usage;
    if (u.input !== 0 || u.output !== 0 || u.total !== 0 || u.cachedInput !== 0 || u.reasoning !== 0)
      return this.write(inputs, onCostError);
    const key = `${inputs.model}\u0000${inputs.backend}`;
    let bytes = this.zero.get(key);
    if (!bytes) {
      // Models can be client-chosen under prefix or regex matches: keep the cache bounded, by entries and bytes.
      bytes = this.write(inputs, onCostError);
      const size = key.length + bytes.length;
      if (this.zero.size >= MAX_ZERO_ENTRIES || this.zeroSize + size > MAX_ZERO_BYTES) {
        this.zero.clear();
        this.zeroSize = 0;
      }
      this.zero.set(key, bytes);
      this.zeroSize += size;
    }
    return bytes;
  }

  private write(inputs: CostInputs, onCostError: CostErrorListener | undefined): EncodedStruct {
    const u = inputs.usage;
    const layout = this.layout;
    const bytes = layout.create();
    // Envoy drops a budget's descriptor, charging nothing, when a request's cost exceeds MAX_REQUEST_COST: a larger
    // value is written as the largest one Envoy charges.
    layout.set(bytes, 0, Math.min(u.input, MAX_REQUEST_COST));
    layout.set(bytes, 1, Math.min(u.output, MAX_REQUEST_COST));
    layout.set(bytes, 2, Math.min(u.total, MAX_REQUEST_COST));
    layout.set(bytes, 3, Math.min(u.cachedInput, MAX_REQUEST_COST));
    layout.set(bytes, 4, Math.min(u.reasoning, MAX_REQUEST_COST));
    for (let i = 0; i < this.costs.length; i++) {
      const cost = this.costs[i];
      let value = 0;
      try {
        value = cost.evaluate(inputs);
      } catch (error) {
        onCostError?.(cost.metadataKey, error as Error);
      }
      layout.set(bytes, TOKEN_KEYS.length + i, Math.min(value, MAX_REQUEST_COST));
    }
    return bytes;
  }
}
