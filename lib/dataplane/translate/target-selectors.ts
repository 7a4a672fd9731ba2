/**
 * Envoy Gateway policies' `targetSelectors`: a policy applies to every object of a kind whose labels match, in the
 * policy's namespace unless `namespaces` widens it (EG `resolvePolicyTargetsFromSelectors`,
 * `internal/gatewayapi/helpers.go` at v1.9.0). A target found through a selector counts like one named in
 * `targetRefs`: a policy that selects a route attaches to it at route level.
 */
import type { KubeObject } from '../model';
import {
  asArray,
  asObject,
  asObjects,
  asString,
  labelSelectorMatches,
  namespaceOf,
  nameOf,
  ObjectIndex,
  spec,
} from '../objects';
import type { Json } from '../objects';
import { GATEWAY_API_GROUP, referenceGranted } from './backends';

/** The policy kinds' API group, which ReferenceGrants name as `from.group`. */
const ENVOY_GATEWAY_GROUP = 'gateway.envoyproxy.io';

/** A possible target: an object of `kind` in the Gateway API group. */
export interface SelectorTarget {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

const LABEL_OPERATORS_WITH_VALUES = new Set(['In', 'NotIn']);
const LABEL_OPERATORS_WITHOUT_VALUES = new Set(['Exists', 'DoesNotExist']);

/**
 * Whether Kubernetes accepts `selector` as a label selector (`metav1.LabelSelectorAsSelector`): `In`/`NotIn` need
 * values, `Exists`/`DoesNotExist` take none, no other operator exists. EG turns a selector it cannot convert into
 * one that matches nothing.
 */
function convertibleSelector(selector: Json): boolean {
  return asObjects(selector.matchExpressions).every((expression) => {
    const operator = asString(expression.operator) ?? '';
    const values = asArray(expression.values);
    if (LABEL_OPERATORS_WITH_VALUES.has(operator)) return values.length > 0;
    if (LABEL_OPERATORS_WITHOUT_VALUES.has(operator)) return values.length === 0;
    return false;
  });
}

/** Whether `selector` matches `labels` the way EG evaluates it (an unconvertible selector matches nothing). */
function selectorMatches(selector: Json | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return false;
  return convertibleSelector(selector) && labelSelectorMatches(selector, labels);
}

/** Whether the selector's `namespaces` admit `targetNamespace` (without it: the policy's namespace only). */
function namespaceAdmitted(index: ObjectIndex, selector: Json, policyNamespace: string, target: string): boolean {
  const namespaces = asObject(selector.namespaces);
  if (namespaces === undefined) return target === policyNamespace;
  switch (asString(namespaces.from) ?? 'Same') {
    case 'Same':
      return target === policyNamespace;
    case 'All':
      return true;
    case 'Selector':
      return selectorMatches(asObject(namespaces.selector), index.namespaceLabels(target));
    default:
      return false;
  }
}

/**
 * Whether one of the policy's `targetSelectors` selects `target`: same group and kind, a namespace the selector
 * admits, labels that match, and for a target in another namespace a ReferenceGrant there admitting the policy.
 */
export function selectedByPolicy(index: ObjectIndex, policy: KubeObject, target: SelectorTarget): boolean {
  const selectors = asObjects(spec(policy).targetSelectors);
  if (selectors.length === 0) return false;
  const object = index.get(target.kind, target.namespace, target.name);
  if (object === undefined) return false;
  const labels = (asObject(object.metadata?.labels) ?? {}) as Record<string, string>;
  const policyNamespace = namespaceOf(policy);
  return selectors.some((selector) => {
    if ((asString(selector.group) ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP) return false;
    if (asString(selector.kind) !== target.kind) return false;
    if (!namespaceAdmitted(index, selector, policyNamespace, target.namespace)) return false;
    if (!selectorMatches(selector, labels)) return false;
    return referenceGranted(
      index,
      { group: ENVOY_GATEWAY_GROUP, kind: policy.kind ?? '', namespace: policyNamespace },
      { group: GATEWAY_API_GROUP, kind: target.kind, namespace: target.namespace, name: nameOf(object) },
    );
  });
}
