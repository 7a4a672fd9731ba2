/**
 * Pulumi mocks that record every registration the way the engine would see it: type, name, URN, parent,
 * dependencies, provider reference and (deserialized, secret-marked) inputs.
 */
import * as pulumi from '@pulumi/pulumi';

export interface Registration {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent: string;
  readonly dependencies: string[];
  readonly provider: string;
  readonly inputs: Record<string, unknown>;
  /** Alias specs sent with the registration: `name`, `parentUrn` and `noParent` as far as given. */
  readonly aliases: { name?: string; type?: string; parentUrn?: string; noParent?: boolean; urn?: string }[];
}

export interface MockOptions {
  /** Run as `pulumi preview`. */
  readonly preview?: boolean;
  /** Resource types whose outputs the mock leaves unset (unknown during preview). */
  readonly unknownOutputsFor?: readonly string[];
  /** Outputs of resource types the mock computes from their inputs (e.g. a RandomPassword's `result`). */
  readonly outputsFor?: Readonly<Record<string, (inputs: Record<string, unknown>) => Record<string, unknown>>>;
}

export interface Mocked {
  readonly registrations: Registration[];
}

type Callback = (err: unknown, response: { getUrn(): string } | undefined) => void;
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
  getProvider(): string;
  getObject(): unknown;
  getAliasesList(): {
    getUrn(): string;
    getSpec(): { getName(): string; getType(): string; getParenturn(): string; getNoparent(): boolean } | undefined;
  }[];
}
interface MonitorLike {
  registerResource(req: RegisterRequest, callback: Callback): Promise<void>;
}

export async function useMocks(options: MockOptions = {}): Promise<Mocked> {
  const registrations: Registration[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({
        id: `${args.name}_id`,
        state: options.unknownOutputsFor?.includes(args.type)
          ? {}
          : { ...args.inputs, ...options.outputsFor?.[args.type]?.(args.inputs as Record<string, unknown>) },
      }),
      call: (args) => args.inputs,
    },
    'project',
    'stack',
    options.preview ?? false,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorLike;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) =>
    register(req, (err, response) => {
      if (!err && response) {
        registrations.push({
          type: req.getType(),
          name: req.getName(),
          urn: response.getUrn(),
          parent: req.getParent(),
          dependencies: req.getDependenciesList(),
          provider: req.getProvider(),
          inputs: pulumi.runtime.deserializeProperties(req.getObject() as never),
          aliases: req.getAliasesList().map((alias) => {
            const spec = alias.getSpec();
            if (spec === undefined) return { urn: alias.getUrn() };
            return {
              ...(spec.getName() ? { name: spec.getName() } : {}),
              ...(spec.getType() ? { type: spec.getType() } : {}),
              ...(spec.getParenturn() ? { parentUrn: spec.getParenturn() } : {}),
              ...(spec.getNoparent() ? { noParent: true } : {}),
            };
          }),
        });
      }
      callback(err, response);
    });
  return { registrations };
}

/** Waits until every outstanding resource operation (registrations, outputs) has finished (internal runtime API). */
export function waitForRPCs(): Promise<void> {
  return (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
}

/** The value of an Output (undefined while unknown), without requiring it to be known. */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T | undefined> {
  return (output as unknown as { promise(): Promise<T | undefined> }).promise();
}

export function isKnown(output: pulumi.Output<unknown>): Promise<boolean> {
  return (output as unknown as { isKnown: Promise<boolean> }).isKnown;
}

function descendants(resources: readonly pulumi.Resource[]): pulumi.Resource[] {
  const found: pulumi.Resource[] = [];
  const visit = (resource: pulumi.Resource): void => {
    found.push(resource);
    const children = (resource as unknown as { __childResources?: Set<pulumi.Resource> }).__childResources;
    children?.forEach(visit);
  };
  resources.forEach(visit);
  return found;
}

/** `Kind namespace/name` of a registered Kubernetes object, from its (known) inputs. */
export function identityOf(registration: Registration): string {
  const metadata = registration.inputs.metadata as { name?: string; namespace?: string } | undefined;
  return (
    `${registration.type.split(':').pop()} ` + `${metadata?.namespace ? `${metadata.namespace}/` : ''}${metadata?.name}`
  );
}

/** The registered Kubernetes object `kind` named `namespace/name` (or `name`); throws if there is none. */
export function objectNamed(registrations: readonly Registration[], kind: string, name: string): Registration {
  const found = kubeObjects(registrations).find((r) => identityOf(r) === `${kind} ${name}`);
  if (found === undefined)
    throw new Error(`no ${kind} ${name} among ${kubeObjects(registrations).map(identityOf).join(', ')}`);
  return found;
}

/** Waits until the components' models sealed and every resource below them is registered. */
export async function settle(...components: pulumi.Resource[]): Promise<void> {
  let seen = -1;
  for (;;) {
    await new Promise((resolve) => setImmediate(resolve));
    const all = descendants(components);
    await Promise.all(all.map((r) => valueOf(r.urn)));
    if (all.length === seen) return;
    seen = all.length;
  }
}

/** A secret input as the engine receives it. */
export function isSecretInput(value: unknown): boolean {
  return pulumi.runtime.isRpcSecret(value);
}

export function unwrapSecret(value: unknown): unknown {
  return pulumi.runtime.unwrapRpcSecret(value);
}

export function isUnknownInput(value: unknown): boolean {
  return pulumi.Output.isInstance(value) === false && pulumi.isUnknown(value);
}

/** Registrations of Kubernetes objects (type `kubernetes:...`), keyed `kind namespace/name`. */
export function kubeObjects(registrations: readonly Registration[]): Registration[] {
  return registrations.filter((r) => r.type.startsWith('kubernetes:') && !r.type.startsWith('pulumi:providers'));
}
