/**
 * Registers plain Kubernetes manifests (a cdk8s synthesis) as @pulumi/kubernetes resources: each under its
 * owning component (`parent`, so the user's provider flows down), named from its construct path (never from
 * input values, so preview and update agree), created after the objects it depends on.
 */
import * as pulumi from '@pulumi/pulumi';
import { creationOrder, dependencyIndices } from './dependencies';
import { resourceClassFor } from './kinds';
import { KubeObject, identityKey, nameOf, namespaceOf } from './objects';

/** One object to register. */
export interface PlannedObject {
  /**
   * The manifest's shape: apiVersion, kind, namespace/name and top-level fields. It names the resource and
   * orders it; under unknown inputs it is rendered with placeholders.
   */
  readonly plan: KubeObject;
  /** What gets applied. An Output when it depends on Pulumi inputs; unknown during preview if they are. */
  readonly manifest: pulumi.Input<KubeObject>;
  /** Fields taken from here instead of `manifest`, marked secret (e.g. a Secret's `stringData`). */
  readonly secretFields?: Readonly<Record<string, pulumi.Input<unknown>>>;
  /** Where the object sits below its component's construct: with `parentName`, the resource name. */
  readonly path: string;
  /** The component the resource belongs to, and the name it was created with (prefixes the child's name). */
  readonly parent: pulumi.Resource;
  readonly parentName: string;
  /**
   * The URN the parent had before it moved (into an `AIGatewayApp`): the object then also carries an alias to its
   * old name below that URN, so stacks deployed with earlier versions keep their objects.
   */
  readonly legacyParent?: pulumi.Input<string>;
  /** Where the object was in earlier versions (another component, another path): aliased, so it is not replaced. */
  readonly formerly?: { readonly parent: pulumi.Resource; readonly parentName: string; readonly path: string };
}

export interface RenderedObject {
  readonly plan: KubeObject;
  readonly resource: pulumi.CustomResource;
}

/**
 * Pulumi name of an object's resource: the component's name and the object's construct path below the
 * component's construct. Unique per parent, and independent of input values (a namespace unknown during preview
 * does not change it).
 */
export function logicalName(parentName: string, path: string): string {
  return `${parentName}:${path}`;
}

/**
 * The name resources had before names followed construct paths (`<component>:<namespace>/<name>`): every resource
 * carries it as an alias, so stacks deployed with earlier versions keep their objects instead of replacing them.
 */
export function legacyName(parentName: string, object: KubeObject): string {
  const namespace = namespaceOf(object);
  return `${parentName}:${namespace === undefined ? '' : `${namespace}/`}${nameOf(object)}`;
}

/**
 * Registers every planned object, dependencies first, each `dependsOn` the resources of the objects it
 * needs. Returns the resources in input order.
 */
export function registerObjects(planned: readonly PlannedObject[]): RenderedObject[] {
  const all = planned.map((p) => p.plan);
  rejectDuplicates(all);
  const dependencies = dependencyIndices(all);
  const resources = new Array<pulumi.CustomResource | undefined>(all.length);

  for (const index of creationOrder(all, dependencies)) {
    const { plan, path, manifest, secretFields, parent, parentName, legacyParent, formerly } = planned[index];
    const dependsOn = dependencies[index].map((i) => {
      const resource = resources[i];
      if (resource === undefined)
        throw new Error(`internal: ${identityKey(all[i])} not registered before its dependant`);
      return resource;
    });
    const ResourceClass = resourceClassFor(plan.apiVersion, plan.kind);
    const name = logicalName(parentName, path);
    const legacy = legacyName(parentName, plan);
    resources[index] = new ResourceClass(name, resourceArgs(plan, manifest, secretFields ?? {}), {
      parent,
      dependsOn,
      aliases: [
        ...(legacy !== name ? [{ name: legacy }] : []),
        ...(legacyParent !== undefined ? [{ name: legacy, parent: legacyParent }] : []),
        ...(formerly !== undefined
          ? [
              { name: logicalName(formerly.parentName, formerly.path), parent: formerly.parent },
              { name: legacyName(formerly.parentName, plan), parent: formerly.parent },
            ]
          : []),
      ],
    });
  }
  return planned.map((p, i) => ({ plan: p.plan, resource: resources[i]! }));
}

/** Top-level fields as inputs: apiVersion/kind verbatim (they pick the resource type), the rest from the manifest. */
function resourceArgs(
  plan: KubeObject,
  manifest: pulumi.Input<KubeObject>,
  secretFields: Readonly<Record<string, pulumi.Input<unknown>>>,
): Record<string, pulumi.Input<unknown>> {
  const args: Record<string, pulumi.Input<unknown>> = { apiVersion: plan.apiVersion, kind: plan.kind };
  const resolved = pulumi.output(manifest) as unknown as pulumi.Output<KubeObject>;
  for (const field of Object.keys(plan)) {
    if (field === 'apiVersion' || field === 'kind') continue;
    if (Object.prototype.hasOwnProperty.call(secretFields, field)) {
      args[field] = pulumi.secret(secretFields[field]);
      continue;
    }
    args[field] = isPlain(manifest) ? manifest[field] : resolved.apply((m) => m[field]);
  }
  return args;
}

function isPlain(manifest: pulumi.Input<KubeObject>): manifest is KubeObject {
  return !pulumi.Output.isInstance(manifest) && typeof (manifest as { then?: unknown }).then !== 'function';
}

function rejectDuplicates(objects: readonly KubeObject[]): void {
  const seen = new Set<string>();
  for (const object of objects) {
    const key = identityKey(object);
    if (seen.has(key)) throw new Error(`two rendered objects have the same identity ${object.kind} ${key}`);
    seen.add(key);
  }
}
