import { Chart, Testing } from 'cdk8s';
import { RateLimitRedis } from '../lib';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findOne, synthAll } from './support/synth';

function inCluster() {
  const app = Testing.app();
  const redis = RateLimitRedis.inCluster(new Chart(app, 'infra', { namespace: 'infra' }), 'Redis');
  return { app, redis };
}

describe('RateLimitRedis', () => {
  it('runs an in-cluster Redis with a Service and a restricted security context', () => {
    const { app, redis } = inCluster();
    const all = synthAll(app);
    const container = (findOne(all, 'Deployment', 'redis') as any).spec.template.spec.containers[0];
    expect(container.image).toBe('docker.io/library/redis:7.4-alpine');
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(findOne(all, 'Service', 'redis').spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 6379 }]);
    expect(redis.url).toBe('redis.infra.svc.cluster.local:6379');
  });

  it('gives the Envoy Gateway Helm values for Redis rate limiting and the Backend API', () => {
    expect(inCluster().redis.helmValues).toEqual({
      config: {
        envoyGateway: {
          extensionApis: { enableBackend: true },
          rateLimit: { backend: { type: 'Redis', redis: { url: 'redis.infra.svc.cluster.local:6379' } } },
        },
      },
    });
  });

  it('points at an external Redis without emitting objects', () => {
    const app = Testing.app();
    const redis = RateLimitRedis.external(new Chart(app, 'infra'), 'Redis', { url: 'cache.example.internal:6380' });
    expect(synthAll(app)).toEqual([]);
    expect(redis.helmValues.config.envoyGateway.rateLimit.backend.redis.url).toBe('cache.example.internal:6380');
  });

  it('throws if the external URL is not host:port', () => {
    const app = Testing.app();
    expect(() => RateLimitRedis.external(new Chart(app, 'infra'), 'Redis', { url: 'redis://cache:6379' })).toThrow(
      /infra\/Redis: invalid url "redis:\/\/cache:6379": must be "host:port"/,
    );
  });
});

describeWithShared('crds/jsonschema', 'RateLimitRedis manifests', (jsonschemaDir) => {
  it('validate against the Kubernetes types', () => {
    expect(manifestProblems(synthAll(inCluster().app), jsonschemaDir)).toEqual([]);
  });
});
