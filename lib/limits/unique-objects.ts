import { ApiObject } from 'cdk8s';
import type { IConstruct } from 'constructs';
import { invalid, type AIGatewayValidationError } from '../errors';

/**
 * Cluster-scoped kinds the constructs emit or users add beside them. Their objects keep the chart's namespace in
 * `metadata` until a patch removes it (see `clusterScoped` in lib/crds.ts), so it is ignored for them.
 */
const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace',
  'GatewayClass',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
]);

/**
 * The error for the first two objects under `root` (the whole app) that the API server would take for one: the same
 * API group, kind, namespace and name (applying the second replaces the first), or undefined. A safety net behind
 * the names constructs claim in the synth registry: it also catches derived names (a route's processor named like
 * a gateway's). Run it when the app is complete (a validation of the root).
 */
export function duplicateObjectError(root: IConstruct): AIGatewayValidationError | undefined {
  const seen = new Map<string, ApiObject>();
  for (const construct of root.node.findAll()) {
    if (!ApiObject.isApiObject(construct)) continue;
    const key = identityKey(construct);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, construct);
      continue;
    }
    const namespace = CLUSTER_SCOPED_KINDS.has(construct.kind) ? undefined : construct.metadata.namespace;
    const where = namespace === undefined ? `"${construct.name}"` : `"${namespace}/${construct.name}"`;
    return invalid(
      construct,
      'metadata.name',
      construct.name,
      `${construct.kind} ${where} is also emitted by ${first.node.path}; ` +
        'two objects of one kind cannot share a name in a ' +
        'namespace (one would replace the other): give the constructs that emit them different names',
    );
  }
  return undefined;
}

/** The identity keys of objects: cdk8s validates the app once per chart and once more, all of it each time. */
const IDENTITY_KEYS = new WeakMap<ApiObject, string>();

/** API group, kind, namespace (none for cluster-scoped kinds) and name: fixed when the object is created. */
function identityKey(object: ApiObject): string {
  let key = IDENTITY_KEYS.get(object);
  if (key === undefined) {
    const group = object.apiVersion.includes('/') ? object.apiVersion.split('/')[0] : '';
    const namespace = CLUSTER_SCOPED_KINDS.has(object.kind) ? undefined : object.metadata.namespace;
    key = `${group}\u0000${object.kind}\u0000${namespace ?? ''}\u0000${object.name}`;
    IDENTITY_KEYS.set(object, key);
  }
  return key;
}

const VALIDATED_ROOTS = new WeakSet<IConstruct>();

/**
 * Adds {@link duplicateObjectError} once to the app `scope` belongs to, as a validation of the root: it runs when the
 * app is synthesized (cdk8s `app.synth()`, `Testing.synth`, the Pulumi front end), after every construct exists, and
 * throws the error itself so the message reads as every other synth error. Every construct may call it.
 */
export function validateUniqueObjects(scope: IConstruct): void {
  const root = scope.node.root;
  if (VALIDATED_ROOTS.has(root)) return;
  VALIDATED_ROOTS.add(root);
  root.node.addValidation({
    validate: () => {
      const error = duplicateObjectError(root);
      if (error) throw error;
      return [];
    },
  });
}
