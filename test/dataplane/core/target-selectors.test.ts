/**
 * Policies attached through `targetSelectors`, resolved as Envoy Gateway v1.9 does (`resolvePolicyTargetsFromSelectors`
 * in internal/gatewayapi/helpers.go): label selectors over objects of the selector's group and kind, in the policy's
 * namespace unless `namespaces` says otherwise, across namespaces only with a ReferenceGrant; a selected route counts
 * as a route target, so the first route-level policy wins and any route-level policy beats a Gateway-level one.
 */
import { parseManifests } from '../../../lib/dataplane/manifests';
import type { RouteModel } from '../../../lib/dataplane/model';
import { translate } from '../../../lib/dataplane/translate';

const GATEWAY = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, labels: {tier: edge}}
spec:
  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {team: blue}}
---
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: infra}
spec: {ports: [{port: 9002}]}
`;

function route(namespace: string, name: string, labels: Record<string, string> = {}): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${namespace}, labels: ${JSON.stringify(labels)}}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [${name}.example.com]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ${namespace}}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: ${namespace}}
spec: {ports: [{port: 9002}]}
`;
}

/** An EnvoyExtensionPolicy `name` in `namespace` with the given target fields (YAML flow mappings). */
function extensionPolicy(namespace: string, name: string, targets: string): string {
  return `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  ${targets}
  extProc: [{backendRefs: [{name: processor, port: 9002}]}]
`;
}

function trafficPolicy(namespace: string, name: string, targets: string, limit: number): string {
  return `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  ${targets}
  circuitBreaker: {maxParallelRequests: ${limit}}
`;
}

/** The routes of the gateway by `namespace/name`, once per HTTPRoute. */
function routesOf(...documents: string[]): Map<string, RouteModel> {
  const model = translate(parseManifests([GATEWAY, ...documents].join('\n---\n')));
  const routes = new Map<string, RouteModel>();
  for (const entry of model.gateways[0].listeners[0].routes) {
    const [, namespace, name] = entry.name.split('/');
    routes.set(`${namespace}/${name}`, entry);
  }
  return routes;
}

/** The ext_proc policies that run on each route, by route. */
function extProcs(...documents: string[]): Record<string, string[]> {
  return Object.fromEntries(
    [...routesOf(...documents)].map(([route, entry]) => [
      route,
      entry.extProcs.map((e) => e.name.replace(/^envoyextensionpolicy\/|\/extproc\/0$/g, '')),
    ]),
  );
}

const BY_LABEL = 'targetSelectors: [{kind: HTTPRoute, matchLabels: {ai: "yes"}}]';

describe('targetSelectors', () => {
  it('select the routes of the policy namespace whose labels match, and no other route', () => {
    expect(
      extProcs(
        route('apps', 'a', { ai: 'yes' }),
        route('apps', 'b', { ai: 'yes', extra: 'x' }),
        route('apps', 'c', { ai: 'no' }),
        route('apps', 'd'),
        extensionPolicy('apps', 'shared', BY_LABEL),
      ),
    ).toEqual({ 'apps/a': ['apps/shared'], 'apps/b': ['apps/shared'], 'apps/c': [], 'apps/d': [] });
  });

  it('take the Gateway API group by default, and select nothing of another group or kind', () => {
    const routes = [route('apps', 'a', { ai: 'yes' })];
    const selected = (selector: string) =>
      extProcs(...routes, extensionPolicy('apps', 'p', `targetSelectors: [${selector}]`))['apps/a'];
    expect(selected('{group: gateway.networking.k8s.io, kind: HTTPRoute, matchLabels: {ai: "yes"}}')).toEqual([
      'apps/p',
    ]);
    expect(selected('{group: example.com, kind: HTTPRoute, matchLabels: {ai: "yes"}}')).toEqual([]);
    expect(selected('{kind: GRPCRoute, matchLabels: {ai: "yes"}}')).toEqual([]);
    // No labels to match: every route of the kind in the namespace (Kubernetes' empty selector).
    expect(selected('{kind: HTTPRoute}')).toEqual(['apps/p']);
  });

  it('evaluate matchExpressions, ANDed with matchLabels; a selector Kubernetes cannot convert selects nothing', () => {
    const routes = [route('apps', 'a', { ai: 'yes', tier: 'gold' }), route('apps', 'b', { ai: 'yes' })];
    const selected = (expressions: string) =>
      Object.entries(
        extProcs(
          ...routes,
          extensionPolicy(
            'apps',
            'p',
            `targetSelectors: [{kind: HTTPRoute, matchLabels: {ai: "yes"}, matchExpressions: ${expressions}}]`,
          ),
        ),
      )
        .filter(([, policies]) => policies.length > 0)
        .map(([name]) => name);
    expect(selected('[{key: tier, operator: In, values: [gold, silver]}]')).toEqual(['apps/a']);
    expect(selected('[{key: tier, operator: NotIn, values: [gold]}]')).toEqual(['apps/b']);
    expect(selected('[{key: tier, operator: Exists}]')).toEqual(['apps/a']);
    expect(selected('[{key: tier, operator: DoesNotExist}]')).toEqual(['apps/b']);
    expect(selected('[{key: tier, operator: In, values: []}]')).toEqual([]);
    expect(selected('[{key: tier, operator: Exists, values: [gold]}]')).toEqual([]);
    expect(selected('[{key: tier, operator: Equals, values: [gold]}]')).toEqual([]);
  });

  it('stay in the policy namespace without `namespaces`, or with `from: Same`', () => {
    const routes = [route('apps', 'a', { ai: 'yes' }), route('other', 'b', { ai: 'yes' })];
    expect(extProcs(...routes, extensionPolicy('apps', 'p', BY_LABEL))).toEqual({
      'apps/a': ['apps/p'],
      'other/b': [],
    });
    const same = 'targetSelectors: [{kind: HTTPRoute, matchLabels: {ai: "yes"}, namespaces: {from: Same}}]';
    expect(extProcs(...routes, extensionPolicy('apps', 'p', same))).toEqual({ 'apps/a': ['apps/p'], 'other/b': [] });
  });

  it('reach other namespaces (`from: All` or a namespace selector) only where a ReferenceGrant admits it', () => {
    const routes = [route('apps', 'a', { ai: 'yes' }), route('other', 'b', { ai: 'yes' })];
    const grant = (namespace: string) => `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: eep-from-infra, namespace: ${namespace}}
spec:
  from: [{group: gateway.envoyproxy.io, kind: EnvoyExtensionPolicy, namespace: infra}]
  to: [{group: gateway.networking.k8s.io, kind: HTTPRoute}]
`;
    const all = 'targetSelectors: [{kind: HTTPRoute, matchLabels: {ai: "yes"}, namespaces: {from: All}}]';
    expect(extProcs(...routes, route('infra', 'i', { ai: 'yes' }), extensionPolicy('infra', 'p', all))).toEqual({
      'apps/a': [],
      'other/b': [],
      'infra/i': ['infra/p'],
    });
    expect(extProcs(...routes, grant('apps'), extensionPolicy('infra', 'p', all))).toEqual({
      'apps/a': ['infra/p'],
      'other/b': [],
    });
    // Namespace labels as the API server keeps them, `kubernetes.io/metadata.name` included.
    const byNamespace = (selector: string) =>
      extProcs(
        ...routes,
        grant('apps'),
        grant('other'),
        extensionPolicy(
          'infra',
          'p',
          `targetSelectors: [{kind: HTTPRoute, namespaces: {from: Selector, selector: ${selector}}}]`,
        ),
      );
    expect(byNamespace('{matchLabels: {team: blue}}')).toEqual({ 'apps/a': ['infra/p'], 'other/b': [] });
    expect(byNamespace('{matchLabels: {kubernetes.io/metadata.name: other}}')).toEqual({
      'apps/a': [],
      'other/b': ['infra/p'],
    });
  });

  it('attach at route level: the first route policy wins, by targetRefs or selector alike, over the Gateway', () => {
    const routes = [route('apps', 'a', { ai: 'yes' }), route('apps', 'b')];
    const named = 'targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: a}]';
    const gateway = extensionPolicy(
      'infra',
      'gateway',
      'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]',
    );
    expect(
      extProcs(
        ...routes,
        gateway,
        extensionPolicy('apps', 'selected', BY_LABEL),
        extensionPolicy('apps', 'named', named),
      ),
    ).toEqual({ 'apps/a': ['apps/selected'], 'apps/b': ['infra/gateway'] });
    expect(
      extProcs(
        ...routes,
        gateway,
        extensionPolicy('apps', 'named', named),
        extensionPolicy('apps', 'selected', BY_LABEL),
      ),
    ).toEqual({ 'apps/a': ['apps/named'], 'apps/b': ['infra/gateway'] });
  });

  it('select Gateways too (a Gateway-level policy), and BackendTrafficPolicies alike', () => {
    const routes = [route('apps', 'a', { ai: 'yes' }), route('apps', 'b')];
    expect(
      extProcs(
        ...routes,
        extensionPolicy('infra', 'edge', 'targetSelectors: [{kind: Gateway, matchLabels: {tier: edge}}]'),
      ),
    ).toEqual({ 'apps/a': ['infra/edge'], 'apps/b': ['infra/edge'] });
    const limits = routesOf(
      ...routes,
      trafficPolicy('infra', 'gateway', 'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]', 7),
      trafficPolicy('apps', 'selected', BY_LABEL, 32),
    );
    expect(limits.get('apps/a')!.maxParallelRequests).toBe(32);
    expect(limits.get('apps/b')!.maxParallelRequests).toBe(7);
  });
});
