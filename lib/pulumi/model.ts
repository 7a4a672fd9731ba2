/**
 * The shared construct model behind the Pulumi components. Every component of a program joins one private
 * cdk8s App (in a Chart of its own, or at its `constructPath`), exactly as the cdk8s constructs share an App, so
 * that cross-references
 * (a route naming a gateway and backends, a budget naming a route) and aggregates (the processor config
 * ConfigMap collects every route, backend and budget of its gateway) come out of the same synthesis cdk8s
 * users get.
 *
 * Components join while the program constructs them; at the end of that synchronous stretch (the next
 * macrotask) the model seals: it waits for the components' inputs, builds the App once and registers every
 * object under the component whose construct emitted it. Inputs still unknown (only during preview) are replaced by
 * placeholders to learn which objects exist; their manifests are then unknown too.
 */
import * as pulumi from '@pulumi/pulumi';
import { ApiObject, App, Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { collectEventuals, collectInstances, mapEventuals, placeholderText } from './inputs';
import type { KubeObject } from './objects';
import { registerObjects } from './renderer';

type Eventual = pulumi.Output<unknown> | Promise<unknown>;

/** What a member's build function may ask about the other members of the same model. */
export interface BuildContext {
  /** The construct another component built in this pass (throws if it is not part of this model). */
  constructOf(component: pulumi.Resource): Construct;
}

/** A component's part in the model. */
export interface ModelMember {
  readonly component: pulumi.ComponentResource;
  /** The Pulumi name, unique in the model. */
  readonly name: string;
  /**
   * Where the member's construct goes: Chart id and construct id (members may share a Chart). Only names
   * cdk8s derives from construct paths depend on it (cdk8s-plus selector labels, default object names).
   */
  readonly path: ConstructPath;
  /** `AIGateway`, `AIRoute`, ... for messages. */
  readonly kind: string;
  /** The component's props; Outputs/Promises anywhere in arrays and plain objects are resolved before `build`. */
  readonly props: unknown;
  /**
   * Creates the member's construct `id` in `chart` from resolved props and returns it; it owns the objects
   * emitted below it. Without a returned construct the member owns the chart's other objects.
   */
  readonly build: (chart: Chart, id: string, props: unknown, context: BuildContext) => Construct | undefined;
  /** Secrets the component creates from Pulumi values (kept out of the construct model). */
  readonly secrets?: readonly ManagedSecretObject[];
}

/** A Kubernetes Secret holding one Pulumi value under one key. */
export interface ManagedSecretObject {
  readonly name: string;
  readonly namespace: pulumi.Input<string>;
  readonly key: string;
  readonly value: pulumi.Input<string>;
}

export interface ConstructPath {
  readonly chart: string;
  readonly id: string;
}

const CONSTRUCT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Parses `chart/id`; throws naming the component when malformed. */
export function parseConstructPath(kind: string, name: string, path: string): ConstructPath {
  const parts = path.split('/');
  if (parts.length !== 2 || !parts.every((part) => CONSTRUCT_ID.test(part))) {
    throw new Error(`${kind} "${name}": invalid constructPath "${path}": expected "<chart id>/<construct id>", e.g. "platform/Gateway"`);
  }
  return { chart: parts[0], id: parts[1] };
}

/**
 * Carries a value through Pulumi outputs without Pulumi walking it: apply results are searched for unknowns
 * key by key, and construct trees are large and cyclic.
 */
export class Opaque<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  get value(): T {
    return this.#value;
  }
}

/** A member's share of a built model. */
export interface MemberBuild {
  readonly construct: Construct | undefined;
  /** The manifests emitted below its construct, in construct order. */
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
  private real: pulumi.Output<Opaque<ModelBuild>> | undefined;

  constructor() {
    this.sealed = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Failures also surface through every member's outputs; this only keeps Node from reporting them twice.
    this.sealed.catch(() => undefined);
  }

  memberFor(component: pulumi.Resource): ModelMember | undefined {
    return this.members.find((m) => m.component === component);
  }

  get isSealed(): boolean {
    return this.sealedFlag;
  }

  join(member: ModelMember): pulumi.Output<Opaque<MemberBuild>> {
    const clash = this.members.find((m) => m.name === member.name);
    if (clash) {
      throw new Error(
        `${member.kind} "${member.name}": another component of this program (${clash.kind} "${clash.name}") has ` +
          'the same name; AI gateway components need names unique across their types',
      );
    }
    const samePath = this.members.find((m) => m.path.chart === member.path.chart && m.path.id === member.path.id);
    if (samePath) {
      throw new Error(
        `${member.kind} "${member.name}": construct path "${member.path.chart}/${member.path.id}" is already taken by ` +
          `${samePath.kind} "${samePath.name}"`,
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
    for (const input of collectEventuals([member.props, (member.secrets ?? []).map((s) => s.namespace)])) {
      const source = componentBehind(input, this);
      if (source !== undefined) {
        throw new Error(
          `${member.kind} "${member.name}": an input is an output of ${source.kind} "${source.name}", which is rendered ` +
            'together with it and cannot provide values before that; pass the value itself (e.g. the namespace string)',
        );
      }
    }
    this.members.push(member);
    modelOf.set(member.component, this);
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = setImmediate(() => void this.seal());
    return pulumi
      .output(this.sealed.then(() => true))
      .apply(() => this.realBuild().apply((build) => new Opaque(memberOf(build.value, member))));
  }

  /**
   * Waits for every input, then builds the model once. Known inputs are used as they are, so names,
   * validation and manifests are exact; only inputs still unknown (during preview) are replaced by
   * placeholders to learn which objects exist. Every manifest is derived from all inputs, so it carries their
   * dependencies and secretness, and stays unknown while any of them is.
   */
  private async seal(): Promise<void> {
    this.sealedFlag = true;
    try {
      const inputs: { input: Eventual; member: ModelMember }[] = [];
      for (const member of this.members) {
        const own = [...collectEventuals(member.props), ...collectEventuals((member.secrets ?? []).map((s) => s.namespace))];
        for (const input of own) if (!inputs.some((i) => i.input === input)) inputs.push({ input, member });
      }
      const settled = await Promise.all(inputs.map(({ input }) => settleInput(input)));
      const valueOf = new Map<Eventual, unknown>();
      inputs.forEach(({ input, member }, i) => valueOf.set(input, settled[i].known ? settled[i].value : this.placeholderFor(input, member)));
      const allKnown = settled.every((s) => s.known);
      const resolve = (value: unknown) => mapEventuals(value, (input) => valueOf.get(input));

      let plan: ModelBuild | undefined;
      try {
        plan = this.build(resolve);
      } catch (error) {
        if (allKnown) throw error;
        plan = await this.planWithout(resolve, error);
        if (plan === undefined) {
          this.real = pulumi.all(inputs.map((i) => i.input)).apply(() => unreachable());
          this.settle.resolve();
          return;
        }
      }
      const planned = plan;
      const gate = pulumi.all(inputs.map((i) => i.input));
      this.real = gate.apply(() => (allKnown ? new Opaque(planned) : unreachable()));
      const secrets = this.members.flatMap((member) =>
        (member.secrets ?? []).map((secret) => {
          // The value only ever travels in `secretFields`; the plan names the key so the field is registered.
          const secretPlan: KubeObject = {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: secret.name, namespace: resolve(secret.namespace) as string },
            type: 'Opaque',
            stringData: { [secret.key]: '(secret)' },
          };
          return {
            plan: secretPlan,
            manifest: gate.apply(() => secretPlan),
            secretFields: { stringData: pulumi.output(secret.value).apply((value) => ({ [secret.key]: value })) },
            parent: member.component,
            parentName: member.name,
          };
        }),
      );
      registerObjects([
        ...[...planned.objects.values()].map(({ object, member }) => ({
          plan: object,
          manifest: gate.apply(() => (allKnown ? object : unreachable())),
          parent: member.component,
          parentName: member.name,
        })),
        ...secrets,
      ]);
      this.settle.resolve();
    } catch (error) {
      this.settle.reject(error);
    }
  }

  /**
   * Placeholders can fail checks that compare values (a route's namespace against the gateway's allowed
   * namespaces). Then the members that fail, and those referring to them, are left out of this preview; the
   * rest is planned (their objects appear once the inputs are known).
   */
  private async planWithout(resolve: (props: unknown) => unknown, error: unknown): Promise<ModelBuild | undefined> {
    const failures = new Map<ModelMember, unknown>();
    try {
      this.build(resolve, { failures });
    } catch {
      // Only the members' own failures matter here.
    }
    let plan: ModelBuild | undefined;
    if (failures.size > 0) {
      try {
        plan = this.build(resolve, { exclude: new Set(failures.keys()) });
      } catch {
        plan = undefined;
      }
    }
    const left = plan === undefined ? this.members : [...failures.keys()];
    await pulumi.log.warn(
      `the objects of ${left.map((m) => `${m.kind} "${m.name}"`).join(', ')} cannot be planned while some inputs ` +
        `are unknown; they will be once the inputs are known (${((failures.values().next().value ?? error) as Error).message})`,
      left[0]?.component,
    );
    return plan;
  }

  private realBuild(): pulumi.Output<Opaque<ModelBuild>> {
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

  /** Builds every member into a fresh App; each emitted object belongs to the member whose construct is its nearest ancestor. */
  private build(
    resolve: (props: unknown) => unknown,
    options: { exclude?: ReadonlySet<ModelMember>; failures?: Map<ModelMember, unknown> } = {},
  ): ModelBuild {
    const app = new App();
    const constructs = new Map<pulumi.Resource, Construct>();
    const charts = new Map<string, Chart>();
    const owners = new Map<Construct, ModelMember>();
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
      if (options.exclude?.has(member)) continue;
      const chart = charts.get(member.path.chart) ?? new Chart(app, member.path.chart);
      charts.set(member.path.chart, chart);
      let construct: Construct | undefined;
      try {
        construct = member.build(chart, member.path.id, resolve(member.props), context);
      } catch (error) {
        if (options.failures === undefined) throw error;
        options.failures.set(member, error);
        continue;
      }
      if (construct !== undefined) constructs.set(member.component, construct);
      owners.set(construct ?? chart, member);
    }
    const members = new Map<ModelMember, { construct: Construct | undefined; objects: KubeObject[] }>(
      this.members.map((m) => [m, { construct: constructs.get(m.component), objects: [] }]),
    );
    const objects = new Map<string, { object: KubeObject; member: ModelMember }>();
    for (const { apiObject, object } of synthesize(app)) {
      const owner = [...apiObject.node.scopes].reverse().map((scope) => owners.get(scope)).find((m) => m !== undefined);
      if (owner === undefined) throw new Error(`internal: no component owns ${apiObject.node.path}`);
      objects.set(apiObject.node.path, { object, member: owner });
      members.get(owner)!.objects.push(object);
    }
    return { members, objects };
  }
}

/** Which model a component joined. */
const modelOf = new WeakMap<pulumi.Resource, Model>();
let openModel: Model | undefined;

/** Adds a component to the program's open model (starting one if the last one has sealed). */
export function joinModel(member: ModelMember): pulumi.Output<Opaque<MemberBuild>> {
  if (openModel === undefined || openModel.isSealed) openModel = new Model();
  return openModel.join(member);
}

/** The member of `model` an Output derives from, if any (Outputs list their source resources synchronously). */
function componentBehind(input: Eventual, model: Model): ModelMember | undefined {
  if (!pulumi.Output.isInstance(input)) return undefined;
  const resources = (input as unknown as { resources?: () => Set<pulumi.Resource> }).resources?.() ?? new Set();
  for (const resource of resources) {
    if (modelOf.get(resource) === model) return model.memberFor(resource);
  }
  return undefined;
}

function memberOf(build: ModelBuild, member: ModelMember): MemberBuild {
  const found = build.members.get(member);
  if (found === undefined) throw new Error(`internal: ${member.kind} "${member.name}" missing from its model`);
  return found;
}

/**
 * What `cdk8s synth` does for every chart, done once for the App: run every construct's validations (same
 * message as cdk8s), then render each ApiObject. (`chart.toJson()` validates the whole App per chart, which is
 * quadratic with one chart per component.)
 */
function synthesize(app: App): { apiObject: ApiObject; object: KubeObject }[] {
  const constructs = app.node.findAll();
  const errors = constructs.flatMap((c) => c.node.validate().map((error) => `[${c.node.path}] ${error}`));
  if (errors.length > 0) throw new Error(`Validation failed with the following errors:\n  ${errors.join('\n  ')}`);
  return constructs
    .filter((c): c is ApiObject => c instanceof ApiObject)
    .map((apiObject) => ({ apiObject, object: apiObject.toJson() as KubeObject }));
}

/** An input's value and whether it is known (unknown values only occur during preview). */
async function settleInput(input: Eventual): Promise<{ value: unknown; known: boolean }> {
  const output = pulumi.output(input) as unknown as { promise(): Promise<unknown>; isKnown: Promise<boolean> };
  const [value, known] = await Promise.all([output.promise(), output.isKnown]);
  return { value, known };
}

/** Apply callbacks only run on known values, and every value is known when the model was built from them. */
function unreachable(): never {
  throw new Error('internal: an AI gateway manifest was read although its inputs were unknown when it was planned');
}
