/**
 * Which rendered objects must exist before which: the order `kubectl apply` gets for free from retries, made
 * explicit for Pulumi's `dependsOn`. Pure functions over plain manifests.
 */
import { KubeObject, describeObject, groupOf, isClusterScoped, nameOf, namespaceOf } from './objects';

/** A reference from one object to another, as found in its spec. `group` undefined: any group. */
export interface ObjectReference {
  readonly group?: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/** Reference lists whose entries may omit `kind` (Gateway API defaults). */
const DEFAULT_KIND_BY_FIELD: Readonly<Record<string, { group: string; kind: string }>> = {
  parentRefs: { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  backendRefs: { group: '', kind: 'Service' },
  certificateRefs: { group: '', kind: 'Secret' },
};

/** Pod-spec style references: field name -> referenced core kind and the field holding the name. */
const POD_REFERENCE_FIELDS: Readonly<Record<string, { kind: string; nameField: string }>> = {
  configMap: { kind: 'ConfigMap', nameField: 'name' },
  configMapKeyRef: { kind: 'ConfigMap', nameField: 'name' },
  configMapRef: { kind: 'ConfigMap', nameField: 'name' },
  secret: { kind: 'Secret', nameField: 'secretName' },
  secretKeyRef: { kind: 'Secret', nameField: 'name' },
  secretRef: { kind: 'Secret', nameField: 'name' },
  imagePullSecrets: { kind: 'Secret', nameField: 'name' },
  persistentVolumeClaim: { kind: 'PersistentVolumeClaim', nameField: 'claimName' },
};

/** Fields whose string value names another object. */
const NAME_FIELDS: Readonly<Record<string, { group: string; kind: string }>> = {
  serviceAccountName: { group: '', kind: 'ServiceAccount' },
  gatewayClassName: { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every reference in the object's body (everything but `metadata` and `status`). */
export function referencesOf(object: KubeObject): ObjectReference[] {
  const found: ObjectReference[] = [];
  const visit = (value: unknown, field: string): void => {
    if (Array.isArray(value)) {
      for (const element of value) visit(element, field);
      return;
    }
    if (typeof value === 'string') {
      const named = NAME_FIELDS[field];
      if (named && value !== '') found.push({ ...named, name: value });
      return;
    }
    if (!isRecord(value)) return;
    const reference = referenceIn(value, field);
    if (reference) found.push(reference);
    for (const [key, child] of Object.entries(value)) visit(child, key);
  };
  for (const [key, value] of Object.entries(object)) {
    if (key !== 'metadata' && key !== 'status' && key !== 'apiVersion' && key !== 'kind') visit(value, key);
  }
  return found;
}

function referenceIn(node: Record<string, unknown>, field: string): ObjectReference | undefined {
  const namespace = typeof node.namespace === 'string' && node.namespace !== '' ? node.namespace : undefined;
  const group = typeof node.group === 'string' ? node.group : undefined;
  if (typeof node.name === 'string' && typeof node.kind === 'string') {
    return { group, kind: node.kind, namespace, name: node.name };
  }
  const defaults = DEFAULT_KIND_BY_FIELD[field];
  if (defaults && typeof node.name === 'string') {
    return { group: group ?? defaults.group, kind: defaults.kind, namespace, name: node.name };
  }
  const podReference = POD_REFERENCE_FIELDS[field];
  if (podReference) {
    const name = node[podReference.nameField];
    if (typeof name === 'string' && name !== '') return { group: '', kind: podReference.kind, name };
  }
  return undefined;
}

function indexKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}|${namespace ?? ''}|${name}`;
}

/**
 * For each object, the indices of the objects it must be created after:
 * its Namespace; the CustomResourceDefinition of its kind; every object it references (Gateway API refs,
 * policy target refs, pod volumes, env and service account, gateway class); and, for references into another
 * namespace, the ReferenceGrants there that admit it.
 */
export function dependencyIndices(objects: readonly KubeObject[]): number[][] {
  const byIdentity = new Map<string, number[]>();
  objects.forEach((object, index) => {
    const key = indexKey(object.kind, namespaceOf(object), nameOf(object));
    byIdentity.set(key, [...(byIdentity.get(key) ?? []), index]);
  });
  const lookup = (group: string | undefined, kind: string, namespace: string | undefined, name: string): number[] => {
    const scope = isClusterScoped(kind) ? undefined : namespace;
    const candidates = byIdentity.get(indexKey(kind, scope, name)) ?? [];
    return group === undefined ? candidates : candidates.filter((i) => groupOf(objects[i].apiVersion) === group);
  };

  const definitions = new Map<string, number[]>();
  const grantsByNamespace = new Map<string, number[]>();
  objects.forEach((object, i) => {
    if (object.kind === 'CustomResourceDefinition') {
      const spec = object.spec as { group?: unknown; names?: { kind?: unknown } } | undefined;
      const key = `${String(spec?.group)}|${String(spec?.names?.kind)}`;
      definitions.set(key, [...(definitions.get(key) ?? []), i]);
    }
    const namespace = namespaceOf(object);
    if (object.kind === 'ReferenceGrant' && namespace !== undefined) {
      grantsByNamespace.set(namespace, [...(grantsByNamespace.get(namespace) ?? []), i]);
    }
  });

  return objects.map((object, self) => {
    const dependencies = new Set<number>();
    const namespace = namespaceOf(object);
    if (namespace !== undefined) lookup('', 'Namespace', undefined, namespace).forEach((i) => dependencies.add(i));
    (definitions.get(`${groupOf(object.apiVersion)}|${object.kind}`) ?? []).forEach((i) => dependencies.add(i));

    for (const reference of referencesOf(object)) {
      const targetNamespace = reference.namespace ?? namespace;
      lookup(reference.group, reference.kind, targetNamespace, reference.name).forEach((i) => dependencies.add(i));
      if (targetNamespace !== undefined && namespace !== undefined && targetNamespace !== namespace) {
        const grants = grantsByNamespace.get(targetNamespace) ?? [];
        grants.filter((i) => admits(objects[i], object, namespace)).forEach((i) => dependencies.add(i));
      }
    }
    dependencies.delete(self);
    return [...dependencies].sort((a, b) => a - b);
  });
}

/** Whether a ReferenceGrant lets objects like `from` in `fromNamespace` refer into its namespace. */
function admits(grant: KubeObject, from: KubeObject, fromNamespace: string): boolean {
  const fromGroup = groupOf(from.apiVersion);
  const spec = grant.spec as { from?: unknown } | undefined;
  const entries = Array.isArray(spec?.from) ? spec.from : [];
  return entries.some(
    (entry) =>
      isRecord(entry) && entry.group === fromGroup && entry.kind === from.kind && entry.namespace === fromNamespace,
  );
}

/**
 * Indices in an order where every object comes after its dependencies; ties keep the input order, so the
 * result is deterministic. Throws on a cycle, naming the objects in it.
 */
export function creationOrder(objects: readonly KubeObject[], dependencies: readonly number[][]): number[] {
  const state = new Array<'new' | 'visiting' | 'done'>(objects.length).fill('new');
  const order: number[] = [];
  const visit = (index: number, path: number[]): void => {
    if (state[index] === 'done') return;
    if (state[index] === 'visiting') {
      const cycle = [...path.slice(path.indexOf(index)), index].map((i) => describeObject(objects[i]));
      throw new Error(`objects depend on each other in a cycle: ${cycle.join(' -> ')}`);
    }
    state[index] = 'visiting';
    for (const dependency of dependencies[index]) visit(dependency, [...path, index]);
    state[index] = 'done';
    order.push(index);
  };
  objects.forEach((_, index) => visit(index, []));
  return order;
}
