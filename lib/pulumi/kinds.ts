/**
 * Picks the @pulumi/kubernetes resource class for a manifest: the typed class for built-in kinds (so Pulumi
 * applies its await logic, aliases and secret handling, e.g. `k8s.core.v1.Secret` marks `data`/`stringData`
 * secret), `k8s.apiextensions.CustomResource` for CRD kinds (Gateway API, Envoy Gateway).
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { groupOf, versionOf } from './objects';

export type KubeResourceClass = new (
  name: string,
  args: Record<string, pulumi.Input<unknown>>,
  opts?: pulumi.CustomResourceOptions,
) => pulumi.CustomResource;

/** API groups served by Kubernetes itself -> the @pulumi/kubernetes module holding their typed classes. */
const BUILT_IN_GROUPS: Readonly<Record<string, unknown>> = {
  '': k8s.core,
  apps: k8s.apps,
  batch: k8s.batch,
  policy: k8s.policy,
  autoscaling: k8s.autoscaling,
  'networking.k8s.io': k8s.networking,
  'rbac.authorization.k8s.io': k8s.rbac,
  'apiextensions.k8s.io': k8s.apiextensions,
  'storage.k8s.io': k8s.storage,
  'scheduling.k8s.io': k8s.scheduling,
  'coordination.k8s.io': k8s.coordination,
  'discovery.k8s.io': k8s.discovery,
  'admissionregistration.k8s.io': k8s.admissionregistration,
  'certificates.k8s.io': k8s.certificates,
  'node.k8s.io': k8s.node,
  'events.k8s.io': k8s.events,
  'flowcontrol.apiserver.k8s.io': k8s.flowcontrol,
  'apiregistration.k8s.io': k8s.apiregistration,
};

export function isBuiltInGroup(group: string): boolean {
  return Object.prototype.hasOwnProperty.call(BUILT_IN_GROUPS, group);
}

/** The resource class for `apiVersion`/`kind`; throws for a built-in kind @pulumi/kubernetes does not know. */
export function resourceClassFor(apiVersion: string, kind: string): KubeResourceClass {
  const group = groupOf(apiVersion);
  if (!isBuiltInGroup(group)) return k8s.apiextensions.CustomResource as unknown as KubeResourceClass;
  const versions = BUILT_IN_GROUPS[group] as Record<string, Record<string, unknown> | undefined>;
  const typed = versions[versionOf(apiVersion)]?.[kind];
  if (typeof typed !== 'function') {
    throw new Error(
      `@pulumi/kubernetes has no resource class for built-in kind ${apiVersion} ${kind}; ` +
        'a Kubernetes API object of a built-in group cannot be registered as a CustomResource',
    );
  }
  return typed as KubeResourceClass;
}
