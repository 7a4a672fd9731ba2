import type { IConstruct } from 'constructs';
import { invalid, type AIGatewayValidationError } from '../errors';

/** What a CRD schema allows in one field (see crd-limits.generated.ts, made from ../shared/crds). */
export interface CrdFieldLimit {
  readonly kind: string;
  readonly apiVersion: string;
  /** Where the field is, e.g. `spec.jwt.providers[].audiences`. */
  readonly field: string;
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly (string | number)[];
}

const compiled = new Map<string, RegExp>();

function fieldName(limit: CrdFieldLimit): string {
  return `the ${limit.kind} field ${limit.field}`;
}

/** Why the API server would reject `value` in the string field `limit`, or undefined when it accepts it. */
export function crdStringProblem(value: string, limit: CrdFieldLimit): string | undefined {
  if (typeof value !== 'string') return `must be a string (${fieldName(limit)})`;
  if (limit.maxLength !== undefined && value.length > limit.maxLength) {
    return `is ${value.length} characters long; ${fieldName(limit)} allows at most ${limit.maxLength}`;
  }
  if (limit.minLength !== undefined && value.length < limit.minLength) {
    return limit.minLength === 1
      ? `must not be empty (${fieldName(limit)})`
      : `must be at least ${limit.minLength} characters long (${fieldName(limit)})`;
  }
  if (limit.enum !== undefined && !limit.enum.includes(value))
    return `must be one of ${limit.enum.join(', ')} (${fieldName(limit)})`;
  if (limit.pattern !== undefined) {
    let pattern = compiled.get(limit.pattern);
    if (!pattern) compiled.set(limit.pattern, (pattern = new RegExp(limit.pattern)));
    if (!pattern.test(value)) return `does not match ${limit.pattern}, the pattern of ${fieldName(limit)}`;
  }
  return undefined;
}

/** Why the API server would reject a list of `count` entries in the list field `limit`, or undefined. */
export function crdListProblem(count: number, limit: CrdFieldLimit): string | undefined {
  if (limit.maxItems !== undefined && count > limit.maxItems)
    return `has ${count} entries; ${fieldName(limit)} allows at most ${limit.maxItems}`;
  if (limit.minItems !== undefined && count < limit.minItems)
    return `has ${count} entries; ${fieldName(limit)} needs at least ${limit.minItems}`;
  return undefined;
}

/** Why the API server would reject the number `value` in the integer field `limit`, or undefined. */
export function crdIntegerProblem(value: number, limit: CrdFieldLimit): string | undefined {
  const low = limit.minimum;
  const high = limit.maximum;
  const range =
    low !== undefined && high !== undefined
      ? `between ${low} and ${high}`
      : low !== undefined
        ? `at least ${low}`
        : `at most ${high}`;
  const outside = (low !== undefined && value < low) || (high !== undefined && value > high);
  if (!Number.isInteger(value) || outside) return `must be an integer ${range} (${fieldName(limit)})`;
  if (limit.enum !== undefined && !limit.enum.includes(value))
    return `must be one of ${limit.enum.join(', ')} (${fieldName(limit)})`;
  return undefined;
}

/** The error for `value` of `prop` in the string field `limit`, or undefined when the API server accepts it. */
export function crdStringError(
  scope: IConstruct,
  prop: string,
  value: string,
  limit: CrdFieldLimit,
): AIGatewayValidationError | undefined {
  const problem = crdStringProblem(value, limit);
  return problem === undefined ? undefined : invalid(scope, prop, value, problem);
}

/** Returns `value`; throws naming the construct, the prop and the value unless the string field `limit` accepts it. */
export function checkCrdString(scope: IConstruct, prop: string, value: string, limit: CrdFieldLimit): string {
  const error = crdStringError(scope, prop, value, limit);
  if (error) throw error;
  return value;
}

/**
 * Returns `list`; throws naming the construct, the prop and the list unless the list field `limit` takes that many
 * entries.
 */
export function checkCrdList<T>(
  scope: IConstruct,
  prop: string,
  list: readonly T[],
  limit: CrdFieldLimit,
): readonly T[] {
  const problem = crdListProblem(list.length, limit);
  if (problem !== undefined) throw invalid(scope, prop, list, problem);
  return list;
}

/** Returns `value`; throws naming the construct, the prop and the value unless the integer field `limit` accepts it. */
export function checkCrdInteger(scope: IConstruct, prop: string, value: number, limit: CrdFieldLimit): number {
  const problem = crdIntegerProblem(value, limit);
  if (problem !== undefined) throw invalid(scope, prop, value, problem);
  return value;
}
