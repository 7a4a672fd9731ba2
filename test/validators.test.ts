import { describeWithShared } from './support/shared';
import { manifestProblems, type Manifest } from './support/manifests';

/** The manifest checks used by every construct test must themselves catch bad objects. */
describeWithShared('crds/jsonschema', 'manifest validation', (jsonschemaDir) => {
  const problems = (object: Record<string, unknown>) => manifestProblems([object as Manifest], jsonschemaDir);

  it('rejects unknown fields in custom resources', () => {
    expect(
      problems({
        apiVersion: 'gateway.envoyproxy.io/v1alpha1',
        kind: 'Backend',
        metadata: { name: 'b' },
        spec: { endpoints: [{ fqdn: { hostname: 'a.b', port: 443, tls: true } }] },
      }),
    ).toEqual([expect.stringContaining('must NOT have additional properties')]);
  });

  it('reports violated CEL rules', () => {
    const result = problems({
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'BackendTrafficPolicy',
      metadata: { name: 'p' },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'g' }],
        mergeType: 'StrategicMerge',
      },
    });
    expect(result).toEqual([expect.stringContaining('mergeType can only be used with xRoute targets')]);
  });

  it('applies schema defaults before CEL rules, as the API server does', () => {
    const result = problems({
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'EnvoyExtensionPolicy',
      metadata: { name: 'p' },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'g' }],
        extProc: [{ backendRefs: [{ name: 'svc' }] }],
      },
    });
    expect(result).toEqual([expect.stringContaining('Must have port for Service reference')]);
  });

  it('rejects unknown fields and wrong types in core kinds', () => {
    const result = problems({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: {
        replicas: '2',
        selector: {},
        template: { spec: { containers: [{ name: 'c', imagePullPolicy: 'Always', bogus: true }] } },
      },
    });
    expect(result.filter((p) => p.includes('core schema'))).toEqual([
      'Deployment /d: core schema: /spec/replicas: must be a number',
      'Deployment /d: core schema: /spec/template/spec/containers/0/bogus: unknown field of Container',
    ]);
  });

  it('requires required core fields', () => {
    expect(
      problems({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ name: 'x' }] } }),
    ).toEqual(['Service /s: core schema: /spec/ports/0/port: required by ServicePort']);
  });

  it('rejects kinds it has no schema for', () => {
    expect(problems({ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 't' } })).toEqual([
      'Thing /t: no schema known for example.com/v1 Thing',
    ]);
  });
});

describeWithShared('crds/jsonschema', 'pod security', (jsonschemaDir) => {
  it('rejects pods outside the "restricted" profile', () => {
    const problems = manifestProblems(
      [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'd' },
          spec: {
            selector: {},
            template: { spec: { containers: [{ name: 'c', securityContext: { runAsNonRoot: true } }] } },
          },
        },
      ],
      jsonschemaDir,
    );
    expect(problems).toEqual([
      'Deployment /d: pod security "restricted": container c: allowPrivilegeEscalation must be false',
      'Deployment /d: pod security "restricted": container c: capabilities must drop ALL',
      'Deployment /d: pod security "restricted": container c: seccompProfile must be RuntimeDefault or Localhost',
    ]);
  });
});
