/**
 * The shared construct model behind the Pulumi components. Every component of a program joins one private
 * cdk8s App (its own Chart inside it), exactly as the cdk8s constructs share an App, so that cross-references
 * (a route naming a gateway and backends, a budget naming a route) and aggregates (the processor config
 * ConfigMap collects every route, backend and budget of its gateway) come out of the same synthesis cdk8s
 * users get.
 *
 * Components join while the program constructs them; at the end of that synchronous stretch (the next
 * macrotask) the model seals: it is built once with placeholders for unknown inputs (that fixes which
 * objects exist, their Pulumi names and order) and every object is registered under the component whose
 * Chart emitted it; the manifests themselves come from building the model again with the resolved inputs.
 */
import * as pulumi from '@pulumi/pulumi';
import { ApiObject, App, Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { collectEventuals, collectInstances, isEventual, mapEventuals, placeholderText } from './inputs';
import { KubeObject, describeObject } from './objects';
import { RegisteredObject, registerObjects } from './renderer';

type Eventual = pulumi.Output<unknown> | Promise<unknown>;

/** What a member's build function may ask about the other members of the same model. */
export interface BuildContext {
  /** The construct another component built in this pass (throws if it is not part of this model). */
  constructOf(component: pulumi.Resource): Construct;
}

/** A component's part in the model. */
export interface ModelMember {
  readonly component: pulumi.ComponentResource;
  /** The Pulumi name; also the id of the member's Chart, so it must be unique in the model. */
  readonly name: string;
  /** `AIGateway`, `AIRoute`, ... for messages. */
  readonly kind: string;
  /** The component's props; Outputs/Promises anywhere in arrays and plain objects are resolved before `build`. */
  readonly props: unknown;
  /** Creates the member's constructs in `chart` from resolved props; returns the construct others refer to. */
  readonly build: (chart: Chart, props: unknown, context: BuildContext) => Construct | undefined;
  /** Objects the component registered itself (e.g. a Secret holding a Pulumi secret), for ordering. */
  readonly registered?: readonly { readonly object: unknown; readonly resource: pulumi.Resource }[];
}

/** A member's share of a built model. */
export interface MemberBuild {
  readonly construct: Construct | undefined;
  /** The manifests its Chart emitted, in cdk8s order. */
  readonly objects: readonly KubeObject[];
}

interface ModelBuild {
  readonly members: Map<ModelMember, MemberBuild>;
  /** Every emitted object by construct path, with the member that owns it. */
  readonly objects: Map<string, { readonly object: KubeObject; readonly member: ModelMember }>;
}

class Model {
  private readonly members: ModelMember[] = [];
  private readonly placeholders = new Map<Eventual, string>();
  private readonly placeholderCounts = new Map<ModelMember, number>();
  private timer: NodeJS.Immediate | undefined;
  private sealedFlag = false;
  private settle!: { resolve: () => void; reject: (error: unknown) => void };
  /** Settles when the model sealed: resolved once `real` is set and the objects are registered. */
  private readonly sealed: Promise<void>;
  private real: pulumi.Output<ModelBuild> | undefined;

  constructor() {
    this.sealed = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Failures also surface through every member's outputs; this only keeps Node from reporting them twice.
    this.sealed.catch(() => undefined);
  }

  get isSealed(): boolean {
    return this.sealedFlag;
  }

  join(member: ModelMember): pulumi.Output<MemberBuild> {
    const clash = this.members.find((m) => m.name === member.name);
    if (clash) {
      throw new Error(
        `${member.kind} "${member.name}": another component of this program (${clash.kind} "${clash.name}") has ` +
          'the same name; AI gateway components need names unique across their types',
      );
    }
    for (const referenced of collectInstances(member.props, pulumi.ComponentResource.isInstance)) {
      const owner = modelOf.get(referenced);
      if (owner !== undefined && owner !== this) {
        const other = owner.members.find((m) => m.component === referenced);
        throw new Error(
          `${member.kind} "${member.name}" refers to ${other?.kind ?? 'component'} "${other?.name ?? '?'}", which ` +
            'was already rendered: create every AI gateway component of a program in one synchronous stretch ' +
            '(not inside apply() callbacks or after awaiting something)',
        );
      }
    }
    this.members.push(member);
    modelOf.set(member.component, this);
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = setImmediate(() => this.seal());
    return pulumi.output(this.sealed.then(() => true)).apply(() => this.realBuild().apply((build) => memberOf(build, member)));
  }

  private seal(): void {
    this.sealedFlag = true;
    try {
      const placeholder = (member: ModelMember) => (input: Eventual) => this.placeholderFor(input, member);
      const plan = this.build((member) => (props) => mapEventuals(props, placeholder(member)));
      const inputs = this.members.flatMap((m) => [
        ...collectEventuals(m.props),
        ...collectEventuals((m.registered ?? []).map((r) => r.object)),
      ]);
      const real = pulumi.all(inputs).apply((values) => {
        const valueOf = new Map<Eventual, unknown>(inputs.map((input, i) => [input, values[i]]));
        const build = this.build(() => (props) => mapEventuals(props, (input) => valueOf.get(input)));
        checkSameObjects(plan, build);
        return build;
      });
      const registered: RegisteredObject[] = this.members.flatMap((member) =>
        (member.registered ?? []).map((r) => ({
          object: mapEventuals(r.object, placeholder(member)) as KubeObject,
          resource: r.resource,
        })),
      );
      registerObjects(
        [...plan.objects].map(([path, { object, member }]) => ({
          plan: object,
          manifest: real.apply((build) => objectAt(build, path)),
          parent: member.component,
          parentName: member.name,
        })),
        registered,
      );
      this.real = real;
      this.settle.resolve();
    } catch (error) {
      this.settle.reject(error);
    }
  }

  private realBuild(): pulumi.Output<ModelBuild> {
    if (this.real === undefined) throw new Error('internal: model read before it sealed');
    return this.real;
  }

  private placeholderFor(input: Eventual, member: ModelMember): string {
    let text = this.placeholders.get(input);
    if (text === undefined) {
      const index = (this.placeholderCounts.get(member) ?? 0) + 1;
      this.placeholderCounts.set(member, index);
      text = placeholderText(member.name, index);
      this.placeholders.set(input, text);
    }
    return text;
  }

  /** Builds every member into a fresh App and synthesizes each member's Chart. */
  private build(resolverFor: (member: ModelMember) => (props: unknown) => unknown): ModelBuild {
    const app = new App();
    const constructs = new Map<pulumi.Resource, Construct>();
    const charts: [ModelMember, Chart][] = [];
    const context: BuildContext = {
      constructOf: (component) => {
        const construct = constructs.get(component);
        if (construct === undefined) {
          throw new Error('a referenced component is not part of this program\'s AI gateway model (or is created later than the component referring to it)');
        }
        return construct;
      },
    };
    for (const member of this.members) {
      const chart = new Chart(app, member.name);
      const construct = member.build(chart, resolverFor(member)(member.props), context);
      if (construct !== undefined) constructs.set(member.component, construct);
      charts.push([member, chart]);
    }
    const members = new Map<ModelMember, MemberBuild>();
    const objects = new Map<string, { object: KubeObject; member: ModelMember }>();
    for (const [member, chart] of charts) {
      const emitted = synthesizeWithPaths(chart);
      for (const { path, object } of emitted) objects.set(path, { object, member });
      members.set(member, { construct: constructs.get(member.component), objects: emitted.map((e) => e.object) });
    }
    return { members, objects };
  }
}

/** Which model a component joined. */
const modelOf = new WeakMap<pulumi.Resource, Model>();
let openModel: Model | undefined;

/** Adds a component to the program's open model (starting one if the last one has sealed). */
export function joinModel(member: ModelMember): pulumi.Output<MemberBuild> {
  if (openModel === undefined || openModel.isSealed) openModel = new Model();
  return openModel.join(member);
}

/** True when `value` holds no Output or Promise (it can be used before the model seals). */
export function isKnownNow(value: unknown): boolean {
  return !isEventual(value) && collectEventuals(value).length === 0;
}

function memberOf(build: ModelBuild, member: ModelMember): MemberBuild {
  const found = build.members.get(member);
  if (found === undefined) throw new Error(`internal: ${member.kind} "${member.name}" missing from its model`);
  return found;
}

function objectAt(build: ModelBuild, path: string): KubeObject {
  const found = build.objects.get(path);
  if (found === undefined) throw new Error(`internal: no object at ${path} in the resolved model`);
  return found.object;
}

/** `chart.toJson()` (which validates the whole App), each object paired with its construct path. */
function synthesizeWithPaths(chart: Chart): { path: string; object: KubeObject }[] {
  const manifests = chart.toJson() as KubeObject[];
  const pathByIdentity = new Map<string, string>();
  for (const apiObject of chart.node.findAll()) {
    if (!(apiObject instanceof ApiObject) || Chart.of(apiObject) !== chart) continue;
    pathByIdentity.set(
      manifestKey(apiObject.apiVersion, apiObject.kind, apiObject.metadata.namespace, apiObject.name),
      apiObject.node.path,
    );
  }
  return manifests.map((object) => {
    const path = pathByIdentity.get(manifestKey(object.apiVersion, object.kind, object.metadata?.namespace, object.metadata?.name));
    if (path === undefined) throw new Error(`internal: cannot find the construct that emitted ${describeObject(object)}`);
    return { path, object };
  });
}

function manifestKey(apiVersion: string, kind: string, namespace: unknown, name: unknown): string {
  return `${apiVersion}|${kind}|${String(namespace ?? '')}|${String(name ?? '')}`;
}

/**
 * The resolved inputs must yield the same objects (construct paths, kinds, top-level fields) the placeholders
 * did, or resources would have been registered for objects that do not exist.
 */
function checkSameObjects(plan: ModelBuild, real: ModelBuild): void {
  const problems: string[] = [];
  for (const [path, { object, member }] of plan.objects) {
    const resolved = real.objects.get(path)?.object;
    if (resolved === undefined) {
      problems.push(`${member.kind} "${member.name}": ${describeObject(object)} (${path}) is not emitted with the resolved inputs`);
    } else if (
      resolved.apiVersion !== object.apiVersion ||
      resolved.kind !== object.kind ||
      Object.keys(resolved).sort().join() !== Object.keys(object).sort().join()
    ) {
      problems.push(`${member.kind} "${member.name}": ${path} changes shape once the inputs resolve`);
    }
  }
  for (const [path, { object, member }] of real.objects) {
    if (!plan.objects.has(path)) {
      problems.push(`${member.kind} "${member.name}": ${describeObject(object)} (${path}) appears only once the inputs resolve`);
    }
  }
  if (problems.length > 0) {
    throw new Error(
      'the Kubernetes objects depend on the values of Pulumi inputs in a way that could not be planned ' +
        `before they resolved (pass these values as plain strings, or reuse one Output object for equal values):\n  - ${problems.join('\n  - ')}`,
    );
  }
}
