/**
 * The construct model behind the Pulumi components. The components of one `AIGatewayApp` share one private cdk8s
 * App (each in a Chart of its own, or at its `constructPath`), exactly as the cdk8s constructs share an App, so that
 * cross-references (a route naming a gateway and backends, a budget naming a route) and aggregates (the processor
 * config ConfigMap collects every route, backend and budget of its gateway) come out of the same synthesis cdk8s
 * users get.
 *
 * There is no global model and no timer: an `AIGatewayApp` runs the user's program function, and when that
 * function has returned (its promise settled: any `await` inside is fine) every component of the app is known. The
 * model then waits for the components' inputs, builds the App once and registers every object under the component
 * whose construct emitted it. Inputs still unknown (only during preview) are replaced by placeholders to learn
 * which objects exist; their manifests are then unknown too. Resource names never depend on input values.
 */
import * as pulumi from '@pulumi/pulumi';
import { ApiObject, App, Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { collectEventuals, collectInstances, mapEventuals, placeholderText } from './inputs';
import type { KubeObject } from './objects';
import { registerObjects } from './renderer';
import { synthRegistry } from '../limits/registry';
import { formerPlaceOf, placeBackendGrants } from '../backend-grants';

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
  /**
   * Whether the component's outputs come from the whole app's synthesis (a chart's manifests), so they resolve only
   * once the app is built and cannot be inputs of components of the same app.
   */
  readonly outputsNeedApp?: boolean;
}

/** What joining gives a component: its share of the built app, and its construct built as early as possible. */
export interface Joined {
  /** Resolves once the app is built (after its program function returned). */
  readonly built: pulumi.Output<Opaque<MemberBuild>>;
  /**
   * The component's construct, built from its own inputs and those of the components it refers to (transitively):
   * it resolves as soon as they do, without waiting for the app, so outputs read from it may be inputs of later
   * components of the same app and may be awaited inside the program function.
   */
  readonly construct: pulumi.Output<Opaque<Construct | undefined>>;
}

/** A Kubernetes Secret holding Pulumi values, each under its key. */
export interface ManagedSecretObject {
  readonly name: string;
  readonly namespace: pulumi.Input<string>;
  readonly entries: readonly { readonly key: string; readonly value: pulumi.Input<string> }[];
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
    throw new Error(
      `${kind} "${name}": invalid constructPath "${path}": expected "<chart id>/<construct id>", ` +
        `e.g. "platform/Gateway"`,
    );
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

/** An emitted object, the member that owns it and its path below the member's construct. */
interface BuiltObject {
  readonly object: KubeObject;
  readonly member: ModelMember;
  readonly path: string;
  /** Where earlier versions put it (another member, another path): its resource carries that identity as an alias. */
  readonly formerly?: { readonly member: ModelMember; readonly path: string };
}

interface ModelBuild {
  readonly members: Map<ModelMember, MemberBuild>;
  /** Every emitted object by construct path. */
  readonly objects: Map<string, BuiltObject>;
}

/** The chart of the objects the app owns itself (no component id can take it: those match CONSTRUCT_ID). */
const APP_CHART_ID = '(app)';

/** A resource holding a model: an `AIGatewayApp`. */
export interface ModelComponent extends pulumi.ComponentResource {
  /** @internal */
  readonly _aiGatewayModel?: Model;
}

/** Placement of a component: the model it joins and the resource options it is constructed with. */
export interface Placement {
  readonly model: Model;
  readonly opts: pulumi.ComponentResourceOptions;
}

/** The model of a resource: its own (an app's or a component's), else the nearest ancestor's. */
function modelOfResource(resource: pulumi.Resource | undefined): Model | undefined {
  for (
    let r = resource;
    r !== undefined;
    r = (r as unknown as { __parentResource?: pulumi.Resource }).__parentResource
  ) {
    const model = (r as ModelComponent)._aiGatewayModel;
    if (model !== undefined) return model;
  }
  return undefined;
}

/**
 * Where a component goes: into the app of its `parent` (or of an ancestor of it), else into the app of the
 * components it refers to (then parented to that app). Components of an app directly below the app carry an
 * alias to the stack root, where components were created before `AIGatewayApp` existed, so existing stacks keep
 * their resources.
 */
export function placeComponent(
  kind: string,
  name: string,
  props: unknown,
  opts: pulumi.ComponentResourceOptions | undefined,
): Placement {
  const fromParent = modelOfResource(opts?.parent);
  const referenced = collectInstances(props, (value) => pulumi.ComponentResource.isInstance(value))
    .map((component) => modelOfResource(component))
    .filter((model): model is Model => model !== undefined);
  const model = fromParent ?? referenced[0];
  if (model === undefined) {
    throw new Error(
      `${kind} "${name}" is not part of an AIGatewayApp: create AI gateway components inside ` +
        'new AIGatewayApp(name, (app) => { ... }) and pass { parent: app } (components referring to ' +
        'another component ' +
        'join its app by themselves)',
    );
  }
  const foreign = referenced.find((other) => other !== model);
  if (foreign !== undefined) {
    throw new Error(
      `${kind} "${name}" refers to a component of AIGatewayApp "${foreign.appName}" but belongs to AIGatewayApp ` +
        `"${model.appName}": components that refer to each other must be in the same app`,
    );
  }
  const parent = opts?.parent ?? model.app;
  const aliases =
    parent === model.app ? [...(opts?.aliases ?? []), { parent: pulumi.rootStackResource }] : opts?.aliases;
  return { model, opts: { ...opts, parent, ...(aliases ? { aliases } : {}) } };
}

/** A Kubernetes object registered for a component. */
export interface ChildResource {
  /** Where the object's construct sits below the component's construct, e.g. `Processor/Deployment/Resource`. */
  readonly path: string;
  readonly apiVersion: string;
  readonly kind: string;
  /** The @pulumi/kubernetes resource (typed class for built-in kinds, `CustomResource` otherwise). */
  readonly resource: pulumi.CustomResource;
}

/** One app's construct model. Created by `AIGatewayApp`; closed when the app's program function has settled. */
export class Model {
  private readonly members: ModelMember[] = [];
  private readonly placeholders = new Map<Eventual, string>();
  private placeholderCount = 0;
  private closed = false;
  private settle!: { resolve: () => void; reject: (error: unknown) => void };
  /** Settles when the model is built: resolved once `real` is set and the objects are registered. */
  private readonly sealed: Promise<void>;
  private real: pulumi.Output<Opaque<ModelBuild>> | undefined;
  private readonly rendered = new Map<ModelMember, ChildResource[]>();
  /** The app as the owner of the objects its components share (see `buildConstructs`). */
  private readonly appMember: ModelMember;

  constructor(
    readonly app: pulumi.ComponentResource,
    readonly appName: string,
  ) {
    this.appMember = {
      component: app,
      name: appName,
      path: { chart: APP_CHART_ID, id: APP_CHART_ID },
      kind: 'AIGatewayApp',
      props: {},
      build: () => undefined,
    };
    this.sealed = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Failures also surface through every member's outputs and the app's `done`; this only keeps Node from
    // reporting them twice.
    this.sealed.catch(() => undefined);
  }

  memberFor(component: pulumi.Resource): ModelMember | undefined {
    return this.members.find((m) => m.component === component);
  }

  join(member: ModelMember): Joined {
    if (this.closed) {
      throw new Error(
        `${member.kind} "${member.name}": AIGatewayApp "${this.appName}" has already built its model (its program ` +
          'function has returned); create every component of the app inside that function, before it returns ' +
          '(awaiting inside it is fine)',
      );
    }
    const samePath = this.members.find((m) => m.path.chart === member.path.chart && m.path.id === member.path.id);
    if (samePath) {
      throw new Error(
        `${member.kind} "${member.name}": construct path "${member.path.chart}/${member.path.id}" ` +
          `is already taken by ` +
          `${samePath.kind} "${samePath.name}"`,
      );
    }
    for (const referenced of collectInstances(member.props, (value) => pulumi.ComponentResource.isInstance(value))) {
      if (modelOfResource(referenced) !== this) {
        throw new Error(
          `${member.kind} "${member.name}" refers to a component that is not part of AIGatewayApp "${this.appName}"`,
        );
      }
    }
    for (const input of collectEventuals([member.props, (member.secrets ?? []).map((s) => s.namespace)])) {
      const source = componentBehind(input, this);
      if (source?.outputsNeedApp) {
        throw new Error(
          `${member.kind} "${member.name}": an input is an output of ${source.kind} "${source.name}", which only ` +
            `resolves once AIGatewayApp "${this.appName}" is built; pass the value itself, or use it in another app`,
        );
      }
    }
    this.members.push(member);
    const built = pulumi
      .output(this.sealed.then(() => true))
      .apply(() => this.realBuild().apply((build) => new Opaque(memberOf(build.value, member))));
    return { built, construct: this.earlyConstruct(member) };
  }

  /** The member and every member it refers to, transitively, in the order they joined. */
  private closureOf(member: ModelMember): Set<ModelMember> {
    const found = new Set<ModelMember>();
    const visit = (m: ModelMember): void => {
      if (found.has(m)) return;
      found.add(m);
      for (const referenced of collectInstances(m.props, (value) => pulumi.ComponentResource.isInstance(value))) {
        const other = this.memberFor(referenced);
        if (other !== undefined) visit(other);
      }
    };
    visit(member);
    return new Set(this.members.filter((m) => found.has(m)));
  }

  /**
   * Builds the member's construct from the inputs of its closure only (no synthesis, so no aggregate of later
   * components is needed): its names are known as soon as those inputs are, and unknown while any of them is.
   */
  private earlyConstruct(member: ModelMember): pulumi.Output<Opaque<Construct | undefined>> {
    const closure = this.closureOf(member);
    const inputs: Eventual[] = [];
    for (const m of closure) {
      for (const input of collectEventuals([m.props, (m.secrets ?? []).map((s) => s.namespace)])) {
        if (!inputs.includes(input)) inputs.push(input);
      }
    }
    return pulumi.all(inputs as pulumi.Input<unknown>[]).apply((values) => {
      const valueOf = new Map<Eventual, unknown>(inputs.map((input, i) => [input, values[i]]));
      const resolve = (value: unknown) => mapEventuals(value, (input) => valueOf.get(input));
      return new Opaque(this.buildConstructs(resolve, { only: closure }).constructs.get(member.component));
    });
  }

  /** The Kubernetes resources registered for `component` (empty while its objects cannot be planned). */
  resourcesOf(component: pulumi.Resource): Promise<readonly ChildResource[]> {
    return this.sealed.then(() => {
      const member = component === this.app ? this.appMember : this.memberFor(component);
      return member === undefined ? [] : (this.rendered.get(member) ?? []);
    });
  }

  /**
   * Builds the model from every member that joined; later joins are refused. Settles when the objects are registered.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.seal();
    }
    return this.sealed;
  }

  /** The program function failed: nothing is built, and every member's outputs fail with the error. */
  fail(error: unknown): void {
    this.closed = true;
    this.settle.reject(error);
  }

  /**
   * Waits for every input, then builds the model once. Known inputs are used as they are, so names,
   * validation and manifests are exact; only inputs still unknown (during preview) are replaced by
   * placeholders to learn which objects exist. Every manifest is derived from all inputs, so it carries their
   * dependencies and secretness, and stays unknown while any of them is.
   */
  private async seal(): Promise<void> {
    try {
      const inputs: { input: Eventual; member: ModelMember }[] = [];
      for (const member of this.members) {
        const own = [
          ...collectEventuals(member.props),
          ...collectEventuals((member.secrets ?? []).map((s) => s.namespace)),
        ];
        for (const input of own) if (!inputs.some((i) => i.input === input)) inputs.push({ input, member });
      }
      const settled = await Promise.all(inputs.map(({ input }) => settleInput(input)));
      const valueOf = new Map<Eventual, unknown>();
      inputs.forEach(({ input, member }, i) =>
        valueOf.set(input, settled[i].known ? settled[i].value : this.placeholderFor(input, member)),
      );
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
            stringData: Object.fromEntries(secret.entries.map((entry) => [entry.key, '(secret)'])),
          };
          return {
            member,
            plan: secretPlan,
            path: `ManagedSecret/${secret.name}`,
            manifest: gate.apply(() => secretPlan),
            secretFields: {
              stringData: pulumi
                .all(secret.entries.map((entry) => entry.value))
                .apply((values) => Object.fromEntries(secret.entries.map((entry, i) => [entry.key, values[i]]))),
            },
            parent: member.component,
            parentName: member.name,
            legacyParent: rootUrnOf(member.component),
          };
        }),
      );
      const objects = [
        ...[...planned.objects.values()].map(({ object, member, path, formerly }) => ({
          member,
          plan: object,
          path,
          manifest: gate.apply(() => (allKnown ? object : unreachable())),
          parent: member.component,
          parentName: member.name,
          legacyParent: rootUrnOf(member.component),
          formerly:
            formerly === undefined
              ? undefined
              : { parent: formerly.member.component, parentName: formerly.member.name, path: formerly.path },
        })),
        ...secrets,
      ];
      const registered = registerObjects(objects);
      registered.forEach(({ plan: object, resource }, i) => {
        const { member, path } = objects[i];
        const list = this.rendered.get(member) ?? [];
        list.push({ path, apiVersion: object.apiVersion, kind: object.kind, resource });
        this.rendered.set(member, list);
      });
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
        `are unknown; they will be once the inputs are known ` +
        `(${((failures.values().next().value ?? error) as Error).message})`,
      left[0]?.component,
    );
    return plan;
  }

  private realBuild(): pulumi.Output<Opaque<ModelBuild>> {
    if (this.real === undefined) throw new Error('internal: model read before it was built');
    return this.real;
  }

  /** A placeholder unique in the model (two members may share a name). */
  private placeholderFor(input: Eventual, member: ModelMember): string {
    let text = this.placeholders.get(input);
    if (text === undefined) {
      this.placeholderCount += 1;
      text = placeholderText(member.name, this.placeholderCount);
      this.placeholders.set(input, text);
    }
    return text;
  }

  /** Creates the members' constructs in a fresh App (`only`: just these members; `exclude`: all but these). */
  private buildConstructs(
    resolve: (props: unknown) => unknown,
    options: {
      only?: ReadonlySet<ModelMember>;
      exclude?: ReadonlySet<ModelMember>;
      failures?: Map<ModelMember, unknown>;
    } = {},
  ): { app: App; constructs: Map<pulumi.Resource, Construct>; owners: Map<Construct, ModelMember> } {
    const app = new App();
    // A build of a subset of the members (a component's early build, or a preview leaving failed members out)
    // holds part of the app: checks that need all of it (a RateLimitRedis somewhere, the routes a budget covers) skip.
    if (options.only !== undefined || options.exclude !== undefined || options.failures !== undefined)
      synthRegistry(app).markPartial();
    const constructs = new Map<pulumi.Resource, Construct>();
    const charts = new Map<string, Chart>();
    const owners = new Map<Construct, ModelMember>();
    // Objects several components share (the backends' ReferenceGrants) belong to the app: which backend needed one
    // first must not decide whose resource it is, or removing that backend would move it to another URN.
    const shared = new Chart(app, APP_CHART_ID);
    placeBackendGrants(app, shared);
    owners.set(shared, this.appMember);
    const context: BuildContext = {
      constructOf: (component) => {
        const construct = constructs.get(component);
        if (construct === undefined) {
          throw new Error(
            "a referenced component is not part of this app's AI gateway model (or is created later " +
              'than the component referring to it)',
          );
        }
        return construct;
      },
    };
    for (const member of this.members) {
      if (options.exclude?.has(member) || (options.only !== undefined && !options.only.has(member))) continue;
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
    return { app, constructs, owners };
  }

  /**
   * Builds every member into a fresh App and synthesizes it; each object belongs to the member whose construct is its
   * nearest ancestor.
   */
  private build(
    resolve: (props: unknown) => unknown,
    options: { exclude?: ReadonlySet<ModelMember>; failures?: Map<ModelMember, unknown> } = {},
  ): ModelBuild {
    const { app, constructs, owners } = this.buildConstructs(resolve, options);
    const members = new Map<ModelMember, { construct: Construct | undefined; objects: KubeObject[] }>(
      [...this.members, this.appMember].map((m) => [m, { construct: constructs.get(m.component), objects: [] }]),
    );
    const objects = new Map<string, BuiltObject>();
    const ownerOf = (construct: Construct) => {
      const scope = [...construct.node.scopes].reverse().find((s) => owners.has(s));
      const owner = scope === undefined ? undefined : owners.get(scope);
      if (scope === undefined || owner === undefined)
        throw new Error(`internal: no component owns ${construct.node.path}`);
      return { owner, below: (path: string) => path.slice(scope.node.path.length + 1) };
    };
    for (const { apiObject, object } of synthesize(app)) {
      const { owner, below } = ownerOf(apiObject);
      const former = formerPlaceOf(apiObject);
      let formerly: BuiltObject['formerly'];
      if (former !== undefined) {
        const place = ownerOf(former.scope);
        formerly = { member: place.owner, path: place.below(`${former.scope.node.path}/${former.id}`) };
      }
      objects.set(apiObject.node.path, { object, member: owner, path: below(apiObject.node.path), formerly });
      members.get(owner)!.objects.push(object);
    }
    return { members, objects };
  }
}

function rootUrnOf(component: pulumi.Resource): pulumi.Output<string> | undefined {
  return (component as { _rootUrn?: pulumi.Output<string> })._rootUrn;
}

/** The member of `model` an Output derives from, if any (Outputs list their source resources synchronously). */
function componentBehind(input: Eventual, model: Model): ModelMember | undefined {
  if (!pulumi.Output.isInstance(input)) return undefined;
  const resources = (input as unknown as { resources?: () => Set<pulumi.Resource> }).resources?.() ?? new Set();
  for (const resource of resources) {
    const member = model.memberFor(resource);
    if (member !== undefined) return member;
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
  // Found again: validation may add objects (a processor's config split over several ConfigMaps).
  return app.node
    .findAll()
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

/**
 * Base of the AI gateway components (`AIGateway`, `AIRoute`, `ProviderBackend`, `TokenRateLimit`,
 * `RateLimitRedis`, `Cdk8sChart`): places the component in its app's model (see `placeComponent`) and gives access
 * to the Kubernetes resources registered for it.
 */
export abstract class AIGatewayComponent extends pulumi.ComponentResource {
  /** @internal */
  private readonly model: Model;
  /**
   * @internal the URN the component had at the stack root, before it was placed in an app (its objects carry
   * aliases below it); undefined when the user chose another parent.
   */
  readonly _rootUrn?: pulumi.Output<string>;

  protected constructor(
    type: string,
    name: string,
    kind: string,
    references: unknown,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    const placement = placeComponent(kind, name, references, opts);
    super(type, name, {}, placement.opts);
    this.model = placement.model;
    if (placement.opts.parent === placement.model.app) this._rootUrn = pulumi.createUrn(name, type);
  }

  /**
   * The Kubernetes resources this component registered, each with its construct path below the component's
   * construct, kind and @pulumi/kubernetes resource; resolves once the app has built its model. E.g.
   * `(await gateway.kubernetesResources()).find((r) => r.kind === 'Deployment')?.resource`.
   */
  kubernetesResources(): Promise<readonly ChildResource[]> {
    return this.model.resourcesOf(this);
  }

  /** @internal adds this component to its app's model. */
  protected joinModel(member: Omit<ModelMember, 'component'>): Joined {
    return this.model.join({ ...member, component: this });
  }
}
