import type { IConstruct } from 'constructs';

/**
 * A synth-time validation failure. The message names the construct path, the prop and the bad value so the
 * user can find the line that caused it.
 */
export class AIGatewayValidationError extends Error {
  constructor(
    readonly constructPath: string,
    readonly prop: string,
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(`${constructPath}: invalid ${prop} ${describeValue(value)}: ${reason}`);
    this.name = 'AIGatewayValidationError';
  }
}

export function invalid(scope: IConstruct, prop: string, value: unknown, reason: string): AIGatewayValidationError {
  return new AIGatewayValidationError(scope.node.path, prop, value, reason);
}

function describeValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    return String(value);
  }
}
