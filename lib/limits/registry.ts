import type { IConstruct } from 'constructs';
import { invalid } from '../errors';

/** An object name a construct emits: two objects of one kind may not share it in one namespace. */
export interface ObjectName {
  /** The kind, e.g. `HTTPRoute`; or a name space of our own such as `processor backend`. */
  readonly kind: string;
  /** The namespace; undefined for cluster-scoped kinds such as GatewayClass. */
  readonly namespace?: string;
  readonly name: string;
}

/** Something the constructs of one app need to know about each other, e.g. that a RateLimitRedis exists. */
export type SynthRole = 'RateLimitRedis' | 'TokenRateLimit';

/**
 * What the constructs of one app tell each other at synth: the object names they emit (so duplicates are
 * reported with both construct paths) and the roles they play. Constructs call it; it knows no construct class.
 */
export interface ISynthRegistry {
  /**
   * Records that `owner` emits `object`, named by its prop `prop`. Throws naming `owner`, `prop` and the name, and
   * the construct path and prop of the first owner, when another construct already emits an object of that kind and
   * name in that namespace. The same construct may claim a name again.
   */
  claimName(owner: IConstruct, prop: string, object: ObjectName): void;
  /** Records that `construct` plays `role`. */
  register(role: SynthRole, construct: IConstruct): void;
  /** The constructs registered for `role`, in registration order. */
  registered(role: SynthRole): readonly IConstruct[];
  /**
   * Whether the app holds only part of the model (the Pulumi front end builds a component and what it refers to
   * early, for its outputs): checks that need the whole app (a RateLimitRedis somewhere, the routes a budget
   * covers) skip then.
   */
  readonly partial: boolean;
  /** Marks the app as a partial build (see `partial`). */
  markPartial(): void;
}

interface Claim {
  readonly owner: IConstruct;
  readonly prop: string;
}

class SynthRegistry implements ISynthRegistry {
  private readonly names = new Map<string, Claim>();
  private readonly roles = new Map<SynthRole, IConstruct[]>();
  partial = false;

  markPartial(): void {
    this.partial = true;
  }

  claimName(owner: IConstruct, prop: string, object: ObjectName): void {
    const key = `${object.kind}\u0000${object.namespace ?? ''}\u0000${object.name}`;
    const first = this.names.get(key);
    if (first === undefined) {
      this.names.set(key, { owner, prop });
      return;
    }
    if (first.owner === owner) return;
    const where = object.namespace === undefined ? `"${object.name}"` : `"${object.namespace}/${object.name}"`;
    throw invalid(
      owner,
      prop,
      object.name,
      `${object.kind} ${where} is already emitted by ${first.owner.node.path} (${first.prop}); ` +
        'two objects of one kind cannot share a name in a namespace (one would replace the other): ' +
        'give one of them another name',
    );
  }

  register(role: SynthRole, construct: IConstruct): void {
    const list = this.roles.get(role) ?? [];
    if (!list.includes(construct)) list.push(construct);
    this.roles.set(role, list);
  }

  registered(role: SynthRole): readonly IConstruct[] {
    return this.roles.get(role) ?? [];
  }
}

const REGISTRIES = new WeakMap<IConstruct, SynthRegistry>();

/** The registry of the app `scope` belongs to (one per construct tree: the cdk8s App, across all its charts). */
export function synthRegistry(scope: IConstruct): ISynthRegistry {
  const root = scope.node.root;
  let registry = REGISTRIES.get(root);
  if (!registry) REGISTRIES.set(root, (registry = new SynthRegistry()));
  return registry;
}
