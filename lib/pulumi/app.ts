/**
 * `AIGatewayApp`: the scope of one construct model, like the cdk8s `App` the constructs share. Its program
 * function creates the AI gateway components; once it has returned (or its promise resolved, so `await` inside is
 * fine), every component is known and the app builds the model and registers the Kubernetes objects.
 */
import * as pulumi from '@pulumi/pulumi';
import { Model, type ChildResource } from './model';

/**
 * The components of one app are built together: a gateway's processor config holds every route and budget created
 * in the program function, whenever it created them. Pass `{ parent: app }` to the components that refer to no
 * other component (gateways, backends, Redis, charts); routes and budgets join the app of what they refer to.
 *
 * ```ts
 * const app = new AIGatewayApp('ai', async (app) => {
 *   const gateway = new AIGateway('ai-gateway', { namespace: 'ai' }, { parent: app });
 *   const team = await lookUpTeamNamespace();
 *   new AIRoute('chat', { gateway, namespace: team, rules: [...] });
 *   return { gatewayName: gateway.gatewayName };
 * });
 * export const gatewayName = app.result.gatewayName;
 * ```
 */
export class AIGatewayApp<T = void> extends pulumi.ComponentResource {
  /** @internal */
  readonly _aiGatewayModel: Model;
  /**
   * Settles once the program function has returned and every Kubernetes object of the app is registered: with the
   * function's result, or with the first error (the function's, or the model's, e.g. a construct's validation).
   * Never await it inside the program function: it would wait for itself (component outputs do not wait for the app).
   */
  readonly done: Promise<T>;
  /** The program function's result as an Output (Outputs inside it are unwrapped), e.g. to export from the stack. */
  readonly result: pulumi.Output<pulumi.Unwrap<T>>;

  constructor(
    name: string,
    program: (app: pulumi.ComponentResource) => T | Promise<T>,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super('ai-gateway:index:AIGatewayApp', name, {}, opts);
    const model = new Model(this, name);
    this._aiGatewayModel = model;
    let returned: T | Promise<T>;
    try {
      returned = program(this);
    } catch (error) {
      model.fail(error);
      throw error;
    }
    this.done = Promise.resolve(returned).then(
      async (value) => {
        await model.close();
        return value;
      },
      (error: unknown) => {
        model.fail(error);
        throw error;
      },
    );
    this.result = pulumi.output(this.done);
    this.registerOutputs({});
  }

  /**
   * The Kubernetes resources the app owns itself: objects its components share, such as the ReferenceGrants that
   * admit routes of a namespace to the backends of another (one per namespace pair for up to 16 backends), so that
   * removing one backend never moves them. Resolves once the model is built, after the program function returned:
   * never await it inside that function (it would wait for itself); pass the promise on, e.g. wait for the grants
   * with `dependsOn: app.kubernetesResources().then((rs) => rs.map((r) => r.resource))`.
   */
  kubernetesResources(): Promise<readonly ChildResource[]> {
    return this._aiGatewayModel.resourcesOf(this);
  }
}
