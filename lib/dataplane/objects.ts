/**
 * Typed access to loosely shaped Kubernetes objects, and the index the translator looks objects up in.
 * `as*` read leniently (a value of the wrong type reads as absent); `*Field` validate (a value of the wrong type is
 * an error naming where it is), for the policy readers that refuse a malformed policy.
 */
import type { KubeObject, ObjectRef } from './model';

export type Json = Record<string, unknown>;

export function asObject(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asObjects(value: unknown): Json[] {
  return asArray(value)
    .map(asObject)
    .filter((v): v is Json => v !== undefined);
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  return undefined;
}

/** Kubernetes' limit on a ConfigMap (or Secret) key's length. */
const MAX_CONFIG_MAP_KEY_LENGTH = 253;

/**
 * Why `key` is no valid ConfigMap key (Kubernetes: 1 to 253 of `-._a-zA-Z0-9`, not `.` or `..`), or undefined when it
 * is one. A valid key is a plain file name: kubelet writes it into the volume's folder, never outside it.
 */
export function configMapKeyProblem(key: string): string | undefined {
  const rule = 'a ConfigMap key is 1 to 253 of the characters -._a-zA-Z0-9, and not "." or ".."';
  if (key.length === 0) return `it is empty (${rule})`;
  if (key.length > MAX_CONFIG_MAP_KEY_LENGTH) return `it has ${key.length} characters (${rule})`;
  if (key === '.' || key === '..') return `it names a folder, not a file (${rule})`;
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) return `it holds characters other than -._a-zA-Z0-9 (${rule})`;
  return undefined;
}

export function spec(object: KubeObject): Json {
  return asObject(object.spec) ?? {};
}

export function nameOf(object: KubeObject): string {
  return object.metadata?.name ?? '';
}

/** Namespaced objects without a namespace live in `default`, as `kubectl apply` would put them. */
export function namespaceOf(object: KubeObject): string {
  return object.metadata?.namespace ?? 'default';
}

export function refOf(object: KubeObject): ObjectRef {
  return { namespace: namespaceOf(object), name: nameOf(object) };
}

export function groupOf(object: KubeObject): string {
  const apiVersion = object.apiVersion ?? '';
  return apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
}

/**
 * A field that is an object when present: undefined when absent (undefined or null), an error when it is anything
 * else.
 */
export function optionalObjectField(value: unknown, where: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  const object = asObject(value);
  if (!object) throw new Error(`${where} must be an object`);
  return object;
}

/** A field that must be an object. */
export function objectField(value: unknown, where: string): Json {
  const object = optionalObjectField(value, where);
  if (!object) throw new Error(`${where} must be an object`);
  return object;
}

/** A field that is a list when present: empty when absent (undefined or null), an error when it is anything else. */
export function optionalListField(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error(`${where} must be a list`);
  return value;
}

/** A policy as the policy readers take it: any object with a name and a namespace. */
export interface PolicyObject {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly [key: string]: unknown;
}

/**
 * What every policy reader checks first: `where` names the policy in errors (`<kind> <namespace>/<name>`), a
 * policy without a name is an error, and the spec is an object (empty when absent).
 */
export function policySpec(
  policy: PolicyObject,
  kind: string,
): { namespace: string; name: string; where: string; spec: Json } {
  const namespace = policy.metadata?.namespace ?? 'default';
  const name = policy.metadata?.name;
  const where = `${kind} ${namespace}/${name ?? '<unnamed>'}`;
  if (!name) throw new Error(`${where}: metadata.name is required`);
  return { namespace, name, where, spec: optionalObjectField(policy.spec, `${where}: spec`) ?? {} };
}

const DURATION_UNITS_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000001,
};

/**
 * Go's `time.ParseDuration` (without a sign) in milliseconds, undefined when invalid: `10s`, `1h2m3s`, `250ms`,
 * `1.5s`, `.5s`, `0`. Envoy Gateway applies it to every Duration field (`messageTimeout`, HTTPRoute `timeouts`,
 * retry and timeout settings), and the conformance echo server to its `delay` parameter. The API server admits only
 * the narrower `^([0-9]{1,5}(h|m|s|ms)){1,4}$` for those fields; on that subset both agree, and the local data plane
 * does not repeat the API server's admission.
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) return undefined;
  if (value === '0') return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;
  let total = 0;
  let at = 0;
  while (at < value.length) {
    part.lastIndex = at;
    const match = part.exec(value);
    if (!match) return undefined;
    total += Number(match[1]) * DURATION_UNITS_MS[match[2]];
    at = part.lastIndex;
  }
  return total;
}

/** {@link parseDurationMs} for a field that must be a duration. */
export function durationField(value: unknown, where: string): number {
  const ms = parseDurationMs(value);
  if (ms === undefined) throw new Error(`${where}: not a duration: ${String(value)}`);
  return ms;
}

/** Parses a Kubernetes quantity (`50Mi`, `1G`, `32768`) into a number of bytes. */
export function parseQuantityBytes(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(value.trim());
  if (!match) return undefined;
  const factor: Record<string, number> = {
    '': 1,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Math.round(Number(match[1]) * factor[match[2] ?? '']);
}

/** A Kubernetes label selector (`matchLabels` AND `matchExpressions`). */
export function labelSelectorMatches(selector: Json | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const matchLabels = asObject(selector.matchLabels) ?? {};
  for (const [key, value] of Object.entries(matchLabels)) if (labels[key] !== value) return false;
  for (const expression of asObjects(selector.matchExpressions)) {
    const key = asString(expression.key) ?? '';
    const values = asArray(expression.values).map(String);
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    switch (expression.operator) {
      case 'In':
        if (!has || !values.includes(labels[key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * The objects of one translation, by kind, namespace and name. Later duplicates replace earlier ones (kubectl apply).
 */
export class ObjectIndex {
  private readonly byKind = new Map<string, Map<string, KubeObject>>();

  constructor(objects: readonly KubeObject[]) {
    for (const object of objects) {
      const kind = object.kind ?? '';
      let forKind = this.byKind.get(kind);
      if (!forKind) this.byKind.set(kind, (forKind = new Map<string, KubeObject>()));
      const key =
        kind === 'Namespace' || kind === 'GatewayClass' ? nameOf(object) : `${namespaceOf(object)}/${nameOf(object)}`;
      forKind.delete(key);
      forKind.set(key, object);
    }
  }

  all(kind: string): KubeObject[] {
    return [...(this.byKind.get(kind)?.values() ?? [])];
  }

  get(kind: string, namespace: string, name: string): KubeObject | undefined {
    return this.byKind.get(kind)?.get(`${namespace}/${name}`);
  }

  /** A namespace's labels, including `kubernetes.io/metadata.name` which the API server always sets. */
  namespaceLabels(namespace: string): Record<string, string> {
    const object = this.byKind.get('Namespace')?.get(namespace);
    return { ...(object?.metadata?.labels ?? {}), 'kubernetes.io/metadata.name': namespace };
  }
}
