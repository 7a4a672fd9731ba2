import { METADATA_NAMESPACE, TOKEN_METADATA_KEYS } from '../config/schema';
import type { ProtoStruct, ProtoValue } from '../grpc/messages';
import type { TokenUsage } from '../translate/types';
import type { CompiledCost, CostInputs } from './costs';

/**
 * The `io.envoy.ai_gateway` dynamic metadata: the five token counts and every configured cost, always
 * numbers (a missing value makes Envoy skip the budget charge). A failing CEL cost writes 0 and reports
 * through `onCostError`.
 */
export function usageMetadata(
  inputs: CostInputs,
  costs: readonly CompiledCost[],
  onCostError?: (key: string, error: Error) => void,
): ProtoStruct {
  const u: TokenUsage = inputs.usage;
  const fields: Record<string, ProtoValue> = {
    [TOKEN_METADATA_KEYS.input]: { numberValue: u.input },
    [TOKEN_METADATA_KEYS.output]: { numberValue: u.output },
    [TOKEN_METADATA_KEYS.total]: { numberValue: u.total },
    [TOKEN_METADATA_KEYS.cachedInput]: { numberValue: u.cachedInput },
    [TOKEN_METADATA_KEYS.reasoning]: { numberValue: u.reasoning },
  };
  for (const cost of costs) {
    let value = 0;
    try {
      value = cost.evaluate(inputs);
    } catch (error) {
      onCostError?.(cost.metadataKey, error as Error);
    }
    fields[cost.metadataKey] = { numberValue: value };
  }
  return { fields: { [METADATA_NAMESPACE]: { structValue: { fields } } } };
}
