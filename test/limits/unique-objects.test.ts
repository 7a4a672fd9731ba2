import { ApiObject, Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { duplicateObjectError, validateUniqueObjects } from '../../lib/limits/unique-objects';
import { expectThrows } from './expect-error';

function configMap(chart: Chart, id: string, name: string, namespace?: string, apiVersion = 'v1'): ApiObject {
  return new ApiObject(chart, id, {
    apiVersion,
    kind: 'ConfigMap',
    metadata: { name, ...(namespace ? { namespace } : {}) },
  });
}

describe('duplicateObjectError', () => {
  it('is undefined when kinds, groups, namespaces or names differ', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'platform');
    configMap(chart, 'A', 'ai', 'platform');
    configMap(chart, 'B', 'ai', 'team');
    configMap(chart, 'C', 'other', 'platform');
    configMap(chart, 'D', 'ai', 'platform', 'example.com/v1');
    new ApiObject(chart, 'E', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ai', namespace: 'platform' } });
    expect(duplicateObjectError(app)).toBeUndefined();
  });

  it('throws if two objects share group, kind, namespace and name across charts, naming both construct paths', () => {
    const app = Testing.app();
    configMap(new Chart(app, 'platform'), 'Processor', 'ai-processor-config', 'ai');
    configMap(new Chart(app, 'team', { namespace: 'ai' }), 'RouteProcessor', 'ai-processor-config');
    expect(duplicateObjectError(app)?.message).toBe(
      'team/RouteProcessor: invalid metadata.name "ai-processor-config": ConfigMap "ai/ai-processor-config" is also ' +
        'emitted by ' +
        'platform/Processor; two objects of one kind cannot share a name in a namespace (one would replace the ' +
        'other): give the ' +
        'constructs that emit them different names',
    );
  });

  it('throws if two cluster-scoped objects share a name, whatever their API version and chart namespace', () => {
    const app = Testing.app();
    new ApiObject(new Chart(app, 'team', { namespace: 'team' }), 'ClassA', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: 'ai' },
    });
    new ApiObject(new Chart(app, 'platform', { namespace: 'platform' }), 'ClassB', {
      apiVersion: 'gateway.networking.k8s.io/v1beta1',
      kind: 'GatewayClass',
      metadata: { name: 'ai' },
    });
    expect(duplicateObjectError(app)?.message).toBe(
      'platform/ClassB: invalid metadata.name "ai": GatewayClass "ai" is also emitted by team/ClassA; two objects of ' +
        'one kind cannot ' +
        'share a name in a namespace (one would replace the other): give the constructs that emit them different names',
    );
  });
});

describe('validateUniqueObjects', () => {
  it('throws at synth if two objects share a name, once per app however often it is added', () => {
    const app = Testing.app();
    const platform = new Chart(app, 'platform', { namespace: 'ai' });
    validateUniqueObjects(platform);
    validateUniqueObjects(new Construct(platform, 'Other'));
    configMap(platform, 'Config', 'ai-processor-config');
    expect(Testing.synth(platform)).toHaveLength(1);
    configMap(new Chart(app, 'team', { namespace: 'ai' }), 'RouteConfig', 'ai-processor-config');
    expectThrows(
      () => Testing.synth(platform),
      'team/RouteConfig: invalid metadata.name "ai-processor-config": ConfigMap "ai/ai-processor-config" is also ' +
        'emitted by platform/Config; two objects of one kind cannot share a name in a namespace (one would replace ' +
        'the other): give the constructs that emit them different names',
    );
  });
});
