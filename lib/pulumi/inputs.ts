/**
 * Resolving props that contain Pulumi inputs. The construct model needs plain values, so props are rendered
 * twice: once right away with a placeholder string in place of every Output (to learn which objects exist and
 * name their resources), and once with the resolved values (the manifests actually applied).
 */
import * as pulumi from '@pulumi/pulumi';

/** An Output or a Promise in a props tree. */
export function isEventual(value: unknown): value is pulumi.Output<unknown> | Promise<unknown> {
  return (
    pulumi.Output.isInstance(value) || typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Copies `value`, replacing every Output/Promise found in arrays and plain objects by `replace(input)`.
 * Class instances (constructs, Pulumi resources, Credentials, ...) are kept as they are.
 */
export function mapEventuals(
  value: unknown,
  replace: (input: pulumi.Output<unknown> | Promise<unknown>) => unknown,
): unknown {
  if (isEventual(value)) return replace(value);
  if (Array.isArray(value)) return value.map((element) => mapEventuals(element, replace));
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) copy[key] = mapEventuals(child, replace);
    return copy;
  }
  return value;
}

/** Every Output/Promise in `value`, each once, in walk order. */
export function collectEventuals(value: unknown): (pulumi.Output<unknown> | Promise<unknown>)[] {
  const found: (pulumi.Output<unknown> | Promise<unknown>)[] = [];
  mapEventuals(value, (input) => {
    if (!found.includes(input)) found.push(input);
    return input;
  });
  return found;
}

/** Every value in `value` (arrays and plain objects walked) that satisfies `test`. */
export function collectInstances<T>(value: unknown, test: (candidate: unknown) => candidate is T): T[] {
  const found: T[] = [];
  const visit = (node: unknown): void => {
    if (test(node)) {
      if (!found.includes(node)) found.push(node);
      return;
    }
    if (Array.isArray(node)) node.forEach(visit);
    else if (isPlainObject(node)) Object.values(node).forEach(visit);
  };
  visit(value);
  return found;
}

/**
 * A placeholder that passes the constructs' name checks (a DNS-1123 label, also a valid hostname) and
 * cannot be mistaken for a real value: `<slug>-input-<n>`.
 */
export function placeholderText(ownerName: string, index: number): string {
  const suffix = `-input-${index}`;
  const slug = ownerName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63 - suffix.length)
    .replace(/-+$/, '');
  return `${slug || 'pulumi'}${suffix}`;
}
