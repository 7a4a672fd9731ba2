import { parseManifests } from '../../../lib/dataplane/manifests';
import type { RouteModel } from '../../../lib/dataplane/model';
import { translate } from '../../../lib/dataplane/translate';
import { intersectHostnames } from '../../../lib/dataplane/translate/hostnames';
import { comparePrecedence, sortRoutes } from '../../../lib/dataplane/translate/sort';
import { parseDurationMs, parseQuantityBytes } from '../../../lib/dataplane/objects';

/**
 * A gateway shaped like what the constructs synthesize: processor, policies, Backends with TLS, a direct-response 404.
 * Its Backend's TLS comes from a BackendTLSPolicy, as the constructs emitted it before the Backend held the settings
 * itself (both forms are tested below).
 */
const MANIFESTS = `
apiVersion: v1
kind: Namespace
metadata: {name: team-chat}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ai-gateway, namespace: ai-platform}
spec:
  gatewayClassName: ai-gateway
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-chat]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: client, namespace: ai-platform}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: ai-gateway}]
  connection: {bufferLimit: 50Mi}
  headers: {earlyRequestHeaders: {remove: [X-AI-Gateway-Backend]}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: processor, namespace: ai-platform}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: ai-gateway}]
  extProc:
  - backendRefs: [{name: processor, port: 9002}]
    messageTimeout: 10s
    processingMode: {allowModeOverride: true, request: {body: Buffered}, response: {body: Buffered}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: gateway-budgets, namespace: ai-platform}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: ai-gateway}]
  rateLimit:
    type: Global
    global:
      rules:
      - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
        limit: {requests: 100, unit: Hour}
        shared: true
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: openai, namespace: ai-platform}
spec:
  endpoints: [{fqdn: {hostname: api.openai.com, port: 443}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: openai-tls, namespace: ai-platform}
spec:
  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: openai}]
  validation: {hostname: api.openai.com, wellKnownCACertificates: System}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: openai-from-team-chat, namespace: ai-platform}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team-chat}]
  to: [{group: gateway.envoyproxy.io, kind: Backend, name: openai}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: HTTPRouteFilter
metadata: {name: not-found, namespace: team-chat}
spec:
  directResponse:
    contentType: application/json
    statusCode: 404
    body: {type: Inline, inline: '{"error":"not found"}'}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat, namespace: team-chat}
spec:
  parentRefs: [{name: ai-gateway, namespace: ai-platform}]
  rules:
  - matches:
    - {path: {type: PathPrefix, value: /v1}, headers: [{name: x-ai-gateway-backend, value: openai}]}
    - {path: {type: PathPrefix, value: /}, headers: [{name: x-ai-gateway-backend, value: openai}]}
    backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: openai, namespace: ai-platform}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: api.openai.com}}]
    timeouts: {request: 120s}
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    filters:
    - {type: ExtensionRef, extensionRef: {group: gateway.envoyproxy.io, kind: HTTPRouteFilter, name: not-found}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: chat, namespace: team-chat}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: chat}]
  mergeType: StrategicMerge
  circuitBreaker: {maxConnections: 64, maxPendingRequests: 64, maxParallelRequests: 64}
  rateLimit:
    type: Global
    global:
      rules:
      - clientSelectors: [{headers: [{name: x-ai-eg-model, type: Distinct}]}]
        limit: {requests: 10, unit: Minute}
        shared: true
  retry:
    numRetries: 3
    retryOn: {triggers: [connect-failure, retriable-status-codes], httpStatusCodes: [503]}
    perRetry: {timeout: 2s}
---
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: ai-platform}
spec:
  selector: {app: processor}
  ports: [{name: grpc, port: 9002, targetPort: 9002}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: processor-config, namespace: ai-platform}
data: {config.json: '{"version":"ai-gateway.v1"}'}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: processor, namespace: ai-platform}
spec:
  template:
    metadata: {labels: {app: processor}}
    spec:
      containers:
      - name: processor
        args: [--config, /etc/ai-gateway/config/config.json, --listen, 0.0.0.0:9002]
        volumeMounts:
        - {name: config, mountPath: /etc/ai-gateway/config}
        - {name: secret-openai, mountPath: /etc/ai-gateway/secrets/openai}
      volumes:
      - {name: config, configMap: {name: processor-config}}
      - {name: secret-openai, secret: {secretName: openai}}
`;

describe('translate: the resources the constructs synthesize', () => {
  const model = translate(parseManifests(MANIFESTS));
  const listener = model.gateways[0].listeners[0];

  it('names the listener as EG does and applies the ClientTrafficPolicy', () => {
    expect(listener.name).toBe('ai-platform/ai-gateway/http');
    expect(listener.earlyRemoveHeaders).toEqual(['x-ai-gateway-backend']);
    expect(listener.bufferLimitBytes).toBe(50 * 1024 * 1024);
    expect(listener.attachedRoutes).toBe(1);
  });

  it('orders the entries by EG precedence: {header + /v1}, {/v1}, {header + /}', () => {
    expect(listener.routes.map((r) => r.name)).toEqual([
      'httproute/team-chat/chat/rule/0/match/0/*',
      'httproute/team-chat/chat/rule/1/match/0/*',
      'httproute/team-chat/chat/rule/0/match/1/*',
    ]);
  });

  it('enables the gateway ext_proc on every route, the direct-response route included', () => {
    for (const route of listener.routes)
      expect(route.extProcs.map((e) => e.name)).toEqual(['envoyextensionpolicy/ai-platform/processor/extproc/0']);
  });

  it('stacks the gateway and route budgets (StrategicMerge) and takes the route policy retry', () => {
    const route = listener.routes[0];
    expect(route.rateLimitRules.map((r) => r.name).sort()).toEqual([
      'ai-platform/gateway-budgets/rule/0',
      'team-chat/chat/rule/0',
    ]);
    expect(route.retry).toEqual({
      numRetries: 3,
      retryOn: ['connect-failure', 'retriable-status-codes'],
      retriableStatusCodes: [503],
      perTryTimeoutMs: 2000,
      backOffBaseMs: undefined,
      backOffMaxMs: undefined,
    });
    expect(route.timeoutMs).toBe(120_000);
  });

  it("takes the route policy's circuit breaker for the rule clusters, else Envoy Gateway's 1024", () => {
    for (const route of listener.routes) expect(route.maxParallelRequests).toBe(64);
    const withoutBreaker = translate(parseManifests(MANIFESTS.replace(/^ {2}circuitBreaker: .*\n/m, '')));
    for (const route of withoutBreaker.gateways[0].listeners[0].routes) expect(route.maxParallelRequests).toBe(1024);
  });

  it('resolves the cross-namespace Backend through the ReferenceGrant, with BackendTLSPolicy TLS', () => {
    const action = listener.routes[0].action;
    expect(action.type).toBe('forward');
    if (action.type !== 'forward') return;
    expect(action.destinations[0].backend).toEqual({
      kind: 'Backend',
      namespace: 'ai-platform',
      name: 'openai',
      port: undefined,
      endpoints: [{ type: 'fqdn', hostname: 'api.openai.com', port: 443 }],
      tls: { sni: 'api.openai.com', caCertificates: [], useSystemCAs: true, insecureSkipVerify: false },
    });
    expect(listener.routes[0].urlRewrite).toEqual({ hostname: 'api.openai.com', path: undefined });
  });

  it("takes TLS from the Backend's own settings, with a BackendTLSPolicy laid over them as Envoy Gateway does", () => {
    const policy =
      'apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\n' +
      'metadata: {name: openai-tls, namespace: ai-platform}\nspec:\n' +
      '  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: openai}]\n' +
      '  validation: {hostname: api.openai.com, wellKnownCACertificates: System}\n---\n';
    const endpoints = '  endpoints: [{fqdn: {hostname: api.openai.com, port: 443}}]\n';
    expect(MANIFESTS).toContain(policy);
    expect(MANIFESTS).toContain(endpoints);
    const tlsOf = (manifests: string) => {
      const action = translate(parseManifests(manifests)).gateways[0].listeners[0].routes[0].action;
      if (action.type !== 'forward') return 'not forwarded';
      const backend = action.destinations[0]?.backend;
      return backend ? backend.tls : 'no backend';
    };
    const withoutPolicy = MANIFESTS.replace(policy, '');
    const backendTls = (tls: string) => withoutPolicy.replace(endpoints, `${endpoints}  tls: ${tls}\n`);
    expect(tlsOf(withoutPolicy)).toBeUndefined();
    expect(tlsOf(backendTls('{sni: api.openai.com, wellKnownCACertificates: System}'))).toEqual({
      sni: 'api.openai.com',
      caCertificates: [],
      useSystemCAs: true,
      insecureSkipVerify: false,
    });
    // A policy of someone else's with a CA of its own: its hostname and CA win, the system CAs are off.
    const privateCa =
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: private-ca, namespace: ai-platform}\n' +
      "data: {ca.crt: 'PEM'}\n---\n";
    const ownPolicy = policy.replace(
      'validation: {hostname: api.openai.com, wellKnownCACertificates: System}',
      'validation: {hostname: llm.internal.example, caCertificateRefs: [{kind: ConfigMap, name: private-ca}]}',
    );
    const systemCas = backendTls('{sni: api.openai.com, wellKnownCACertificates: System}');
    const merged = `${systemCas}\n---\n${privateCa}${ownPolicy}`;
    expect(tlsOf(merged.replace(ownPolicy, ''))).toMatchObject({ sni: 'api.openai.com', useSystemCAs: true });
    expect(tlsOf(merged)).toEqual({
      sni: 'llm.internal.example',
      caCertificates: ['PEM'],
      useSystemCAs: false,
      insecureSkipVerify: false,
    });
    // TLS that trusts nothing is refused, as Envoy Gateway refuses it; a policy's CAs complete it.
    const trustsNothing = backendTls('{sni: api.openai.com}');
    const resolvedRefs = (manifests: string) =>
      translate(parseManifests(manifests)).routeStatuses[0].parents[0].conditions.find(
        (c) => c.type === 'ResolvedRefs',
      );
    expect(resolvedRefs(trustsNothing)).toMatchObject({ status: 'False', reason: 'InvalidBackendTLS' });
    // The rule's only backend is invalid: Envoy Gateway answers 500.
    const rule = translate(parseManifests(trustsNothing)).gateways[0].listeners[0].routes[0];
    expect(rule.action).toMatchObject({ type: 'directResponse', status: 500 });
    const completed = `${trustsNothing}\n---\n${policy.replace(/---\n$/, '')}`;
    expect(resolvedRefs(completed)).toMatchObject({ status: 'True' });
    expect(tlsOf(completed)).toMatchObject({ sni: 'api.openai.com', useSystemCAs: true });
    // What the policy has no field for stays the Backend's: skipping verification, which then wins over any CA.
    const insecure = `${backendTls('{insecureSkipVerify: true}')}\n---\n${policy.replace(/---\n$/, '')}`;
    expect(tlsOf(insecure)).toEqual({
      sni: 'api.openai.com',
      caCertificates: [],
      useSystemCAs: true,
      insecureSkipVerify: true,
    });
  });

  it('admits each Backend a shared ReferenceGrant names, and none it does not', () => {
    const grantTo = '  to: [{group: gateway.envoyproxy.io, kind: Backend, name: openai}]\n';
    expect(MANIFESTS).toContain(grantTo);
    const resolved = (to: string) => {
      const statuses = translate(parseManifests(MANIFESTS.replace(grantTo, `  to: [${to}]\n`))).routeStatuses;
      return statuses[0].parents[0].conditions.find((c) => c.type === 'ResolvedRefs');
    };
    const entry = (name: string) => `{group: gateway.envoyproxy.io, kind: Backend, name: ${name}}`;
    expect(resolved([entry('anthropic'), entry('openai'), entry('bedrock')].join(', '))).toMatchObject({
      status: 'True',
    });
    expect(resolved([entry('anthropic'), entry('bedrock')].join(', '))).toMatchObject({
      status: 'False',
      reason: 'RefNotPermitted',
    });
    // The same names under another kind admit nothing.
    expect(resolved('{group: "", kind: Service, name: openai}')).toMatchObject({ reason: 'RefNotPermitted' });
  });

  it('turns the HTTPRouteFilter into a direct response with its content type', () => {
    const route = listener.routes[1];
    expect(route.action).toEqual({ type: 'directResponse', status: 404, body: Buffer.from('{"error":"not found"}') });
    expect(route.responseHeaders?.set).toEqual([['content-type', 'application/json']]);
  });

  it('reports the route Accepted with resolved references', () => {
    expect(model.routeStatuses).toEqual([
      {
        route: { namespace: 'team-chat', name: 'chat' },
        parents: [
          {
            parentRef: { namespace: 'ai-platform', name: 'ai-gateway' },
            conditions: [
              { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Route is accepted' },
              {
                type: 'ResolvedRefs',
                status: 'True',
                reason: 'ResolvedRefs',
                message: 'Resolved all the Object references for the Route',
              },
            ],
          },
        ],
      },
    ]);
  });

  it('finds the processor Deployment, its Service, config and secret mounts', () => {
    expect(model.processors).toEqual([
      {
        namespace: 'ai-platform',
        deploymentName: 'processor',
        serviceName: 'processor',
        servicePort: 9002,
        args: ['--config', '/etc/ai-gateway/config/config.json', '--listen', '0.0.0.0:9002'],
        configMapName: 'processor-config',
        configJson: '{"version":"ai-gateway.v1"}',
        secretMounts: [{ secretName: 'openai', mountPath: '/etc/ai-gateway/secrets/openai' }],
      },
    ]);
  });

  it.each(['../escaped', 'nested/part', '..', '.', 'x'.repeat(254), 'with space'])(
    'refuses the config ConfigMap key %j, which is no ConfigMap key, naming the ConfigMap',
    (key) => {
      const manifests = MANIFESTS.replace(
        `data: {config.json: '{"version":"ai-gateway.v1"}'}`,
        `data: {config.json: '{"version":"ai-gateway.v1"}'}\nbinaryData: {${JSON.stringify(key)}: eA==}`,
      );
      expect(() => translate(parseManifests(manifests))).toThrow(
        `processor Deployment ai-platform/processor: ConfigMap ai-platform/processor-config of its config volume ` +
          `has the key ${JSON.stringify(key)}, which is not a valid ConfigMap key`,
      );
    },
  );

  it('takes every valid ConfigMap key: 1 to 253 of -._a-zA-Z0-9', () => {
    const keys = ['.hidden', '..double', 'part-0_A.bin', 'x'.repeat(253)];
    const manifests = MANIFESTS.replace(
      `data: {config.json: '{"version":"ai-gateway.v1"}'}`,
      `data: {config.json: '{"version":"ai-gateway.v1"}', ${keys.map((k) => `${k}: x`).join(', ')}}`,
    );
    expect(translate(parseManifests(manifests)).processors).toHaveLength(1);
  });
});

describe('translate: attachment', () => {
  const base = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  listeners:
  - {name: a, port: 80, protocol: HTTP, hostname: a.example.com}
  - {name: b, port: 80, protocol: HTTP, hostname: '*.example.com', allowedRoutes: {namespaces: {from: All}}}
---`;
  const route = (ns: string, extra: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ${ns}}
spec:
  ${extra}
  rules: [{backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ${ns}}
spec: {ports: [{port: 80}]}
`;
  const accepted = (manifests: string) =>
    translate(parseManifests(manifests)).routeStatuses[0].parents.map((p) => p.conditions[0]);

  it('rejects a route from another namespace on a `Same` listener (NotAllowedByListeners)', () => {
    expect(accepted(base + route('apps', 'parentRefs: [{name: gw, namespace: infra, sectionName: a}]'))).toEqual([
      expect.objectContaining({ status: 'False', reason: 'NotAllowedByListeners' }),
    ]);
  });

  it('rejects an unknown sectionName (NoMatchingParent) and a port no listener has', () => {
    expect(accepted(base + route('infra', 'parentRefs: [{name: gw, sectionName: c}, {name: gw, port: 8080}]'))).toEqual(
      [
        expect.objectContaining({ status: 'False', reason: 'NoMatchingParent' }),
        expect.objectContaining({ status: 'False', reason: 'NoMatchingParent' }),
      ],
    );
  });

  it('rejects a route whose hostnames intersect no listener (NoMatchingListenerHostname)', () => {
    expect(
      accepted(base + route('apps', 'hostnames: [other.org]\n  parentRefs: [{name: gw, namespace: infra}]')),
    ).toEqual([expect.objectContaining({ status: 'False', reason: 'NoMatchingListenerHostname' })]);
  });

  it('keeps a hostname that another listener on the port claims exactly off the wildcard listener', () => {
    const model = translate(
      parseManifests(base + route('infra', 'hostnames: [a.example.com, b.example.com]\n  parentRefs: [{name: gw}]')),
    );
    const [a, b] = model.gateways[0].listeners;
    expect(a.routes.map((r) => r.hostname)).toEqual(['a.example.com']);
    expect(b.routes.map((r) => r.hostname)).toEqual(['b.example.com']);
    expect(b.routes[0].name).toBe('httproute/infra/r/rule/0/match/0/b_example_com');
  });

  it('answers a missing Service with a 500 and ResolvedRefs=False BackendNotFound', () => {
    const model = translate(
      parseManifests(
        base +
          route('infra', 'parentRefs: [{name: gw}]').replace(
            /kind: Service\nmetadata: {name: svc/,
            'kind: Service\nmetadata: {name: other',
          ),
      ),
    );
    expect(model.gateways[0].listeners[0].routes[0].action).toEqual({ type: 'directResponse', status: 500 });
    expect(model.routeStatuses[0].parents[0].conditions[1]).toEqual(
      expect.objectContaining({ status: 'False', reason: 'BackendNotFound' }),
    );
  });
});

describe('hostname intersection (EG computeHosts)', () => {
  it.each([
    [[], undefined, ['*']],
    [[], 'a.com', ['a.com']],
    [['x.a.com', 'b.com'], '*.a.com', ['x.a.com']],
    [['*.com'], '*.a.com', ['*.a.com']],
    [['*.a.com'], '*.com', ['*.a.com']],
    [['*.a.com'], 'x.a.com', ['x.a.com']],
    [['*.a.com'], 'a.com', []],
    [['b.com', 'a.com'], undefined, ['a.com', 'b.com']],
  ])('route %j on listener %s -> %j', (route, listener, expected) => {
    expect(intersectHostnames(route, listener, [])).toEqual(expected);
  });
});

describe('EG route precedence', () => {
  const r = (path: RouteModel['path'], headers = 0, exact = headers, query = 0) => ({
    path,
    headers: Array.from({ length: headers }, (_, i) => ({
      name: `h${i}`,
      type: i < exact ? ('Exact' as const) : ('RegularExpression' as const),
      value: 'v',
    })),
    queryParams: Array.from({ length: query }, (_, i) => ({ name: `q${i}`, type: 'Exact' as const, value: 'v' })),
  });

  it('ranks Exact over RegularExpression over PathPrefix whatever the length', () => {
    const exact = r({ type: 'Exact', value: '/a' });
    const regex = r({ type: 'RegularExpression', value: '/aaaaaaaa.*' });
    const prefix = r({ type: 'PathPrefix', value: '/aaaaaaaaaaaaaaa' });
    expect(sortRoutes([prefix, regex, exact])).toEqual([exact, regex, prefix]);
  });

  it('counts the prefix length (`/` as 0), then headers, then exact headers, then query params', () => {
    expect(
      comparePrecedence(r({ type: 'PathPrefix', value: '/ab' }), r({ type: 'PathPrefix', value: '/a' }, 5)),
    ).toBeGreaterThan(0);
    expect(
      comparePrecedence(r({ type: 'PathPrefix', value: '/' }, 1), r({ type: 'PathPrefix', value: '/' }, 0, 0, 3)),
    ).toBeGreaterThan(0);
    expect(
      comparePrecedence(r({ type: 'PathPrefix', value: '/' }, 2, 0), r({ type: 'PathPrefix', value: '/' }, 1, 1)),
    ).toBeGreaterThan(0);
    expect(
      comparePrecedence(r({ type: 'PathPrefix', value: '/' }, 1, 1), r({ type: 'PathPrefix', value: '/' }, 1, 0)),
    ).toBeGreaterThan(0);
  });

  it('keeps input order on ties', () => {
    const first = r({ type: 'PathPrefix', value: '/x' });
    const second = r({ type: 'PathPrefix', value: '/y' });
    expect(sortRoutes([first, second])).toEqual([first, second]);
    expect(sortRoutes([second, first])).toEqual([second, first]);
  });
});

describe('value parsing', () => {
  it('reads Gateway API durations and Kubernetes quantities', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('1h2m3s')).toBe(3_723_000);
    expect(parseDurationMs('0s')).toBe(0);
    expect(parseDurationMs('ten')).toBeUndefined();
    // Go's time.ParseDuration forms beyond the CRD pattern, as Envoy Gateway and the echo server read them.
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('.5s')).toBe(500);
    expect(parseDurationMs('0')).toBe(0);
    expect(parseDurationMs('1s2')).toBeUndefined();
    expect(parseDurationMs('-1s')).toBeUndefined();
    expect(parseQuantityBytes('50Mi')).toBe(52_428_800);
    expect(parseQuantityBytes('32768')).toBe(32_768);
    expect(parseQuantityBytes('lots')).toBeUndefined();
  });
});

describe('translate: GatewayClass', () => {
  const gateway = (className: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/not-envoy-gateway}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec: {gatewayClassName: ${className}, listeners: [{name: http, port: 80, protocol: HTTP}]}
`;

  it('serves Gateways of Envoy Gateway classes (or of classes not in the manifests) only', () => {
    expect(translate(parseManifests(gateway('eg'))).gateways).toHaveLength(1);
    expect(translate(parseManifests(gateway('installed-elsewhere'))).gateways).toHaveLength(1);
    expect(translate(parseManifests(gateway('other'))).gateways).toHaveLength(0);
  });
});

const GATEWAY_PROXY_REF = '{group: gateway.envoyproxy.io, kind: EnvoyProxy, name: gw-proxy}';

describe("translate: EnvoyProxy preserveRouteOrder (the Gateway's EnvoyProxy merged over its class's)", () => {
  /** Two routes whose precedence order (the longer prefix first) differs from their input (name) order. */
  const manifests = (gatewayProxy: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
  parametersRef: {group: gateway.envoyproxy.io, kind: EnvoyProxy, name: class-proxy, namespace: envoy-gateway-system}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyProxy
metadata: {name: class-proxy, namespace: envoy-gateway-system}
spec: {preserveRouteOrder: true}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: eg
  listeners: [{name: http, port: 80, protocol: HTTP}]
  ${gatewayProxy === '' ? '' : `infrastructure: {parametersRef: ${GATEWAY_PROXY_REF}}`}
${gatewayProxy}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: first, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /v1}}], backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: second, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /v1/chat}}], backendRefs: [{name: svc, port: 80}]}]
`;
  const proxy = (spec: string) => `---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyProxy
metadata: {name: gw-proxy, namespace: ns}
spec: ${spec}`;
  const order = (yaml: string): string[] =>
    translate(parseManifests(yaml)).gateways[0].listeners[0].routes.map((route) => route.path?.value ?? '');

  it("keeps input order from the class's EnvoyProxy when the Gateway has none, or merges one over it", () => {
    expect(order(manifests(''))).toEqual(['/v1', '/v1/chat']);
    expect(order(manifests(proxy('{mergeType: StrategicMerge, logging: {level: {default: info}}}')))).toEqual([
      '/v1',
      '/v1/chat',
    ]);
  });

  it("sorts by precedence when the Gateway's EnvoyProxy replaces the class's, or turns it off", () => {
    expect(order(manifests(proxy('{logging: {level: {default: info}}}')))).toEqual(['/v1/chat', '/v1']);
    expect(order(manifests(proxy('{mergeType: JSONMerge, preserveRouteOrder: false}')))).toEqual(['/v1/chat', '/v1']);
  });
});
