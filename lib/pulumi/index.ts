/**
 * Pulumi front end (`ai-gateway-constructs/pulumi`): the cdk8s constructs as Pulumi ComponentResources.
 */
export { Cdk8sChart, Cdk8sChartArgs } from './chart';
export { KubeObject } from './objects';
