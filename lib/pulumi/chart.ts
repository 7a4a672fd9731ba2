/**
 * `Cdk8sChart`: any cdk8s chart, built from props that may hold Pulumi inputs, registered as Pulumi
 * Kubernetes resources. The AI gateway components use the same machinery.
 */
import * as pulumi from '@pulumi/pulumi';
import type { Chart } from 'cdk8s';
import { AIGatewayComponent } from './model';
import type { KubeObject } from './objects';

export interface Cdk8sChartArgs<P> {
  /** Passed to `build` once every Output/Promise inside resolved (placeholders for values unknown in preview). */
  readonly props: P;
  /** Adds constructs to the chart; their objects become this component's children. */
  readonly build: (chart: Chart, props: pulumi.Unwrap<P>) => void;
}

export class Cdk8sChart<P = Record<string, never>> extends AIGatewayComponent {
  /**
   * The manifests the chart synthesized (unknown during preview when they depend on unknown inputs). They resolve
   * once the app is built: do not await them inside the app's program function, nor pass them to a component of
   * the same app.
   */
  readonly manifests: pulumi.Output<KubeObject[]>;

  constructor(name: string, args: Cdk8sChartArgs<P>, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:index:Cdk8sChart', name, 'Cdk8sChart', args.props, opts);
    const { built } = this.joinModel({
      name,
      kind: 'Cdk8sChart',
      path: { chart: name, id: 'Cdk8sChart' },
      props: args.props,
      build: (chart, _id, props) => {
        args.build(chart, props as pulumi.Unwrap<P>);
        return undefined;
      },
      outputsNeedApp: true,
    });
    // Through the URN: the manifests carry the chart as a dependency, so passing them into the same app is refused.
    this.manifests = this.urn.apply(() => built.apply((b) => [...b.value.objects]));
    this.registerOutputs({ manifests: this.manifests });
  }
}
