/** Plain Kubernetes manifests as cdk8s synthesizes them, and their identity. */

export interface KubeMetadata {
  readonly name?: string;
  readonly namespace?: string;
  readonly [field: string]: unknown;
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: KubeMetadata;
  readonly [field: string]: unknown;
}

/** Kinds without a namespace that our objects may reference. */
const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace',
  'GatewayClass',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'StorageClass',
  'PriorityClass',
  'PersistentVolume',
  'IngressClass',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
]);

export function isClusterScoped(kind: string): boolean {
  return CLUSTER_SCOPED_KINDS.has(kind);
}

/** `apps/v1` -> `apps`, `v1` -> `` (core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export function versionOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
}

export function nameOf(object: KubeObject): string {
  const name = object.metadata?.name;
  if (typeof name !== 'string' || name === '') {
    throw new Error(`${object.apiVersion} ${object.kind} has no metadata.name; every rendered object needs one`);
  }
  return name;
}

/** The object's namespace; undefined for cluster-scoped kinds and objects without one. */
export function namespaceOf(object: KubeObject): string | undefined {
  if (isClusterScoped(object.kind)) return undefined;
  const namespace = object.metadata?.namespace;
  return typeof namespace === 'string' && namespace !== '' ? namespace : undefined;
}

/** `kind namespace/name` (or `kind name`), for messages. */
export function describeObject(object: KubeObject): string {
  const namespace = namespaceOf(object);
  return `${object.kind} ${namespace === undefined ? '' : `${namespace}/`}${nameOf(object)}`;
}

/** Identity of an object independent of its API version: group, kind, namespace and name. */
export function identityKey(object: KubeObject): string {
  return `${groupOf(object.apiVersion)}|${object.kind}|${namespaceOf(object) ?? ''}|${nameOf(object)}`;
}
