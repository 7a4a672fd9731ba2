import { Chart, type ApiObject } from 'cdk8s';
import { Construct, type IConstruct } from 'constructs';
import { customResource, GATEWAY_API_GROUP, REFERENCE_GRANT_API_VERSION, type ReferenceGrantSpec } from './crds';
import { synthRegistry } from './limits/registry';
import { derivedName } from './names';

/** ReferenceGrant `spec.to` maxItems (gateway-api v1beta1, ../shared/crds): the names one grant can hold. */
export const GRANT_TARGETS_MAX = 16;

/** The kind of object a grant admits, and its name. */
export interface GrantTarget {
  /** `''` for a Service. */
  readonly group: string;
  readonly kind: 'Backend' | 'Service';
  readonly name: string;
}

/** One ReferenceGrant: the object (emitted when the chunk opened) and the names it admits, in contribution order. */
interface Chunk {
  readonly object: ApiObject;
  readonly targets: GrantTarget[];
}

/**
 * The ReferenceGrants that let HTTPRoutes of one namespace reference backends (Envoy Gateway Backends or Services)
 * of another, shared by all backends of an app: one list of chunks per (backend namespace, route namespace, target
 * kind), each a grant naming up to `GRANT_TARGETS_MAX` backends. Backends contribute; the grants render their lists.
 *
 * Names are stable as backends are added: a chunk's name is fixed by its position (`ai-backends-from-<ns>`, then
 * `-2`, `-3`, …) and a new backend lands in the last chunk, or opens a new one when that is full. Removing a backend
 * from the program moves the later backends one place forward (a name may move to the previous grant), but no grant
 * is renamed. The grants live in a scope of their own (`GRANTS_SCOPE_ID`), not below any backend, so which backend
 * opened a chunk never decides whose object it is: in the chart of the backend that opened it, or where the app put
 * them (`placeBackendGrants`; the Pulumi front end gives them to its `AIGatewayApp`, so removing a backend never moves
 * a grant to another component). A grant never exists without a name in `to`: a `to` entry without a name would admit
 * every object of that kind in the namespace.
 */
class BackendGrants {
  private readonly chunks = new Map<string, Chunk[]>();
  private readonly granted = new Set<string>();
  /** Where the grants go; undefined: the chart of the backend that opens each. */
  home: Construct | undefined;

  /** Adds `target` (in `namespace`) to the grants for routes of `routeNamespace`; `opener` hosts a new chunk. */
  grant(opener: Construct, namespace: string, routeNamespace: string, target: GrantTarget): void {
    const key = `${namespace}\u0000${routeNamespace}\u0000${target.group}\u0000${target.kind}`;
    const entry = `${key}\u0000${target.name}`;
    if (this.granted.has(entry)) return;
    this.granted.add(entry);
    const chunks = this.chunks.get(key) ?? [];
    this.chunks.set(key, chunks);
    let last = chunks[chunks.length - 1];
    if (last === undefined || last.targets.length >= GRANT_TARGETS_MAX) {
      last = this.open(opener, namespace, routeNamespace, target, chunks.length);
      chunks.push(last);
    }
    last.targets.push(target);
  }

  private open(
    opener: Construct,
    namespace: string,
    routeNamespace: string,
    target: GrantTarget,
    index: number,
  ): Chunk {
    const targets: GrantTarget[] = [];
    const prefix = target.kind === 'Service' ? 'ai-services' : 'ai-backends';
    // The chunk number comes before "from": after the namespace, `…-from-a-2` would also be the first grant of a
    // namespace named "a-2".
    const parts = [prefix, ...(index === 0 ? [] : [String(index + 1)]), 'from', routeNamespace];
    const name = derivedName(parts);
    synthRegistry(opener).claimName(opener, 'namespace', { kind: 'ReferenceGrant', namespace, name });
    const home = this.home ?? Chart.of(opener);
    const scope = home.node.tryFindChild(GRANTS_SCOPE_ID) ?? new Construct(home, GRANTS_SCOPE_ID);
    const object = customResource<ReferenceGrantSpec>(
      scope,
      // The namespace and name are the object's identity; a namespace has no dots, so the id is unambiguous.
      `${namespace}.${name}`,
      REFERENCE_GRANT_API_VERSION,
      'ReferenceGrant',
      { name, namespace },
      () => ({
        from: [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute', namespace: routeNamespace }],
        to: targets.map((t) => ({ group: t.group, kind: t.kind, name: t.name })),
      }),
    );
    // A backend contributes one name per route namespace, so it opened at most one chunk per route namespace.
    FORMER_PLACES.set(object, { scope: opener, id: `ReferenceGrant-${routeNamespace}` });
    return { object, targets };
  }
}

/** The construct id of the scope holding the shared backend grants. */
export const GRANTS_SCOPE_ID = 'AIBackendGrants';

/** Where a construct sat in earlier versions: below `scope`, with id `id`. */
export interface FormerPlace {
  readonly scope: Construct;
  readonly id: string;
}

const FORMER_PLACES = new WeakMap<ApiObject, FormerPlace>();

/**
 * Where a shared backend grant's construct was before the grants had a scope of their own: below the backend that
 * opened it, as `ReferenceGrant-<route namespace>` (front ends with identities tied to construct paths alias it).
 */
export function formerPlaceOf(object: ApiObject): FormerPlace | undefined {
  return FORMER_PLACES.get(object);
}

/** Puts the backend grants of the app `scope` belongs to below `home` (before any backend grants). */
export function placeBackendGrants(scope: IConstruct, home: Construct): void {
  backendGrants(scope).home = home;
}

const REGISTRIES = new WeakMap<IConstruct, BackendGrants>();

/** The backend grants of the app `scope` belongs to (one per construct tree). */
export function backendGrants(scope: IConstruct): BackendGrants {
  const root = scope.node.root;
  let grants = REGISTRIES.get(root);
  if (!grants) REGISTRIES.set(root, (grants = new BackendGrants()));
  return grants;
}
