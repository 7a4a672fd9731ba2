import { METADATA_NAMESPACE, TOKEN_METADATA_KEYS } from '../config/schema';
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

/**
 * The `io.envoy.ai_gateway` dynamic metadata of one config: the five token counts and every configured
 * cost, always numbers (a missing value makes Envoy skip the budget charge). A failing CEL cost writes 0
 * and reports through `onCostError`.
 */
export class UsageMetadata {
  private readonly layout: NumberStructLayout;

  constructor(private readonly costs: readonly CompiledCost[]) {
    this.layout = new NumberStructLayout(METADATA_NAMESPACE, [...TOKEN_KEYS, ...costs.map((cost) => cost.metadataKey)]);
  }

  encode(inputs: CostInputs, onCostError?: (key: string, error: Error) => void): EncodedStruct {
    const u = inputs.usage;
    const values = [u.input, u.output, u.total, u.cachedInput, u.reasoning];
    for (const cost of this.costs) {
      let value = 0;
      try {
        value = cost.evaluate(inputs);
      } catch (error) {
        onCostError?.(cost.metadataKey, error as Error);
      }
      values.push(value);
    }
    return this.layout.encode(values);
  }
}
