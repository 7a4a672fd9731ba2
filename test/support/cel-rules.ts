import { celEnv, parse, plan } from '@bufbuild/cel';

/** A CEL rule (`x-kubernetes-validations`) of a CRD schema node that applied to an emitted object. */
export interface CelRuleResult {
  path: string;
  rule: string;
  message: string;
  /** true: holds; false: violated; string: could not be evaluated (an error message). */
  outcome: true | false | string;
}

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  default?: unknown;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
};

/** CEL identifiers that Kubernetes escapes as `__name__` in field access. */
const RESERVED = new Set([
  'true',
  'false',
  'null',
  'in',
  'as',
  'break',
  'const',
  'continue',
  'else',
  'for',
  'function',
  'if',
  'import',
  'let',
  'loop',
  'package',
  'namespace',
  'return',
  'var',
  'void',
  'while',
]);

const env = celEnv({});
const programs = new Map<string, ReturnType<typeof plan>>();

/**
 * Evaluates every CEL validation rule of the CRD schema that applies to `object` (the rules of every schema node
 * the object populates), the way the API server does: after structural defaulting, integers as CEL ints,
 * reserved field names escaped. Transition rules (`oldSelf`) only run on updates and are skipped.
 */
export function evaluateCelRules(schema: Schema, object: unknown): CelRuleResult[] {
  const results: CelRuleResult[] = [];
  walk(schema, withDefaults(schema, object), '', results);
  return results;
}

function walk(node: Schema, data: unknown, path: string, results: CelRuleResult[]): void {
  if (data === undefined) return;
  for (const { rule, message } of node['x-kubernetes-validations'] ?? []) {
    if (rule.includes('oldSelf')) continue;
    results.push({ path: path || '/', rule, message: message ?? '', outcome: evaluate(rule, toCel(node, data)) });
  }
  if (Array.isArray(data) && node.items) {
    data.forEach((item, i) => walk(node.items!, item, `${path}/${i}`, results));
  } else if (data !== null && typeof data === 'object') {
    for (const [key, value] of Object.entries(data)) {
      const child =
        node.properties?.[key] ??
        (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
      if (child) walk(child, value, `${path}/${key}`, results);
    }
  }
}

function evaluate(rule: string, self: unknown): true | false | string {
  let program = programs.get(rule);
  try {
    if (!program) {
      program = plan(env, parse(rule));
      programs.set(rule, program);
    }
    const result = program({ self } as never) as unknown;
    if (result === true || result === false) return result;
    if (result instanceof Error) return result.message;
    return `rule returned ${String(result)}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Applies the schema's defaults to absent fields (API server structural defaulting). */
function withDefaults(node: Schema, data: unknown): unknown {
  if (Array.isArray(data)) return node.items ? data.map((item) => withDefaults(node.items!, item)) : data;
  if (data === null || typeof data !== 'object') return data;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    const child =
      node.properties?.[key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    out[key] = child ? withDefaults(child, value) : value;
  }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (!(key in out) && child.default !== undefined) out[key] = withDefaults(child, structuredClone(child.default));
  }
  return out;
}

/** JSON to CEL values: integers become ints (bigint), reserved field names get their escaped alias. */
function toCel(node: Schema | undefined, data: unknown): unknown {
  if (typeof data === 'number') {
    const integral = node?.type === 'integer' || node?.['x-kubernetes-int-or-string'] === true;
    return integral && Number.isInteger(data) ? BigInt(data) : data;
  }
  if (Array.isArray(data)) return data.map((item) => toCel(node?.items, item));
  if (data === null || typeof data !== 'object') return data;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    const child =
      node?.properties?.[key] ??
      (typeof node?.additionalProperties === 'object' ? node.additionalProperties : undefined);
    const converted = toCel(child, value);
    out[key] = converted;
    if (RESERVED.has(key)) out[`__${key}__`] = converted;
  }
  return out;
}
