import { App, Chart, Duration, Size, Testing } from 'cdk8s';
import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import {
  AIGateway,
  AIRoute,
  AllowedRoutes,
  Credentials,
  GatewayClass,
  ModelMatch,
  ProcessorImage,
  ProviderBackend,
  ProxyDeployMode,
} from '../lib';
import { libraryVersion } from '../lib/processor-image';
import { DEFAULT_CONFIG_WAIT_MS } from '../processor/src/config/load';
import { gatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, policyRoutes, synthAll } from './support/synth';

function gatewayOnly(props: ConstructorParameters<typeof AIGateway>[2] = {}) {
  const app = Testing.app();
  const chart = new Chart(app, 'platform', { namespace: 'platform' });
  const gateway = new AIGateway(chart, 'Gateway', { name: 'gw', ...props });
  return { app, chart, gateway, manifests: () => synthAll(app) };
}

describe('AIGateway', () => {
  it('emits a Gateway with an HTTP listener and its own GatewayClass', () => {
    const { manifests } = gatewayOnly();
    const all = manifests();
    const gatewayClass = findOne(all, 'GatewayClass');
    expect(gatewayClass.spec).toEqual({ controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' });
    expect(gatewayClass.metadata).toEqual({ name: 'gw' });
    const gateway = findOne(all, 'Gateway', 'gw');
    expect(gateway.metadata.namespace).toBe('platform');
    expect(gateway.spec.gatewayClassName).toBe('gw');
    expect(gateway.spec.listeners).toEqual([
      {
        name: 'http',
        protocol: 'HTTP',
        port: 80,
        allowedRoutes: {
          namespaces: { from: 'Same' },
          kinds: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }],
        },
      },
    ]);
  });

  it('uses an existing GatewayClass and adds an HTTPS listener with certificates', () => {
    const { manifests } = gatewayOnly({
      gatewayClass: GatewayClass.fromName('eg'),
      https: { certificateSecretNames: ['ai-example-com-tls'], hostname: 'ai.example.com' },
      allowedRoutes: AllowedRoutes.fromNamespaces('team-a', 'team-b'),
    });
    const all = manifests();
    expect(findAll(all, 'GatewayClass')).toEqual([]);
    const gateway = findOne(all, 'Gateway');
    expect(gateway.spec.gatewayClassName).toBe('eg');
    expect(gateway.spec.listeners[1]).toMatchObject({
      name: 'https',
      protocol: 'HTTPS',
      port: 443,
      hostname: 'ai.example.com',
      tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', group: '', name: 'ai-example-com-tls' }] },
      allowedRoutes: {
        namespaces: {
          from: 'Selector',
          selector: {
            matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a', 'team-b'] }],
          },
        },
      },
    });
  });

  it('raises the request buffer limit with a ClientTrafficPolicy (50Mi by default) and tells the processor', () => {
    const all = gatewayOnly().manifests();
    const policy = findOne(all, 'ClientTrafficPolicy');
    expect(policy.metadata.name).toBe('gw-client');
    expect(policy.spec.targetRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }]);
    expect(policy.spec.connection).toEqual({ bufferLimit: '50Mi' });
    const config = JSON.parse(findOne(all, 'ConfigMap').data['config.json']);
    expect(config.maxRequestBodyBytes).toBe(50 * 1024 * 1024);

    const custom = gatewayOnly({ requestBufferLimit: Size.mebibytes(8) }).manifests();
    expect(findOne(custom, 'ClientTrafficPolicy').spec.connection.bufferLimit).toBe('8Mi');
  });

  it('strips the headers only the gateway may set before any filter or route sees them', () => {
    const policy = findOne(gatewayOnly().manifests(), 'ClientTrafficPolicy');
    expect(policy.spec.headers).toEqual({
      earlyRequestHeaders: {
        remove: [
          'x-ai-gateway-backend',
          'x-ai-eg-model',
          'x-ai-gateway-route',
          'x-ai-gateway-consumer',
          'x-ai-gateway-client-id',
        ],
      },
    });
  });

  it('authenticates JWTs and copies claims into headers clients cannot forge', () => {
    const all = gatewayOnly({
      jwt: {
        issuer: 'https://login.example.com',
        jwksUri: 'https://login.example.com/jwks.json',
        audiences: ['ai'],
        claimToHeaders: { tenant: 'x-tenant-id' },
      },
    }).manifests();
    expect(findOne(all, 'SecurityPolicy', 'gw-jwt').spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
      jwt: {
        providers: [
          {
            name: 'default',
            issuer: 'https://login.example.com',
            audiences: ['ai'],
            remoteJWKS: { uri: 'https://login.example.com/jwks.json' },
            claimToHeaders: [{ claim: 'tenant', header: 'x-tenant-id' }],
          },
        ],
      },
    });
    expect(findOne(all, 'ClientTrafficPolicy').spec.headers.earlyRequestHeaders.remove).toContain('x-tenant-id');
  });

  it('throws if the JWKS URI is not https', () => {
    expect(() => gatewayOnly({ jwt: { issuer: 'i', jwksUri: 'http://login.example.com/jwks.json' } })).toThrow(
      /platform\/Gateway: invalid jwt.jwksUri "http:\/\/login.example.com\/jwks.json": must be an https URL/,
    );
  });

  it(
    'enables the processor on each AIRoute HTTPRoute, never on the whole Gateway (ordinary ' +
      'HTTPRoutes keep working)',
    () => {
      const app = Testing.app();
      const platform = new Chart(app, 'platform', { namespace: 'platform' });
      const team = new Chart(app, 'team', { namespace: 'team' });
      const gateway = new AIGateway(platform, 'Gateway', {
        name: 'gw',
        allowedRoutes: AllowedRoutes.fromNamespaces('platform', 'team'),
        processor: { messageTimeout: Duration.seconds(15) },
      });
      expect(findAll(synthAll(app), 'EnvoyExtensionPolicy')).toEqual([]);

      const openai = ProviderBackend.openAI(platform, 'OpenAI', {
        name: 'openai',
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
      });
      const rules = (model: string) => [{ models: [ModelMatch.exact(model)], backends: [{ backend: openai }] }];
      new AIRoute(platform, 'Local', { name: 'local', gateway, rules: rules('a') });
      new AIRoute(team, 'Chat', { name: 'chat', gateway, rules: rules('b') });
      new AIRoute(team, 'Other', { name: 'other', gateway, rules: rules('c') });
      const all = synthAll(app);
      const policies = findAll(all, 'EnvoyExtensionPolicy') as any[];
      // One policy per route namespace, selecting the HTTPRoutes labelled with the processor: one ext_proc filter and
      // one processor cluster in Envoy per namespace, however many routes it holds.
      expect(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
        'platform/gw-processor',
        'team/gw-processor-platform',
      ]);
      expect(policies.map((p) => policyRoutes(all, p))).toEqual([['platform/local'], ['team/chat', 'team/other']]);
      // Likewise one 404 filter per route namespace, which the catch-all rules of its routes refer to.
      expect(findAll(all, 'HTTPRouteFilter').map((f) => `${f.metadata.namespace}/${f.metadata.name}`)).toEqual([
        'platform/gw-processor-not-found',
        'team/gw-processor-platform-not-found',
      ]);
      expect(findAll(all, 'HTTPRoute').map((r: any) => r.spec.rules.at(-1).filters[0].extensionRef.name)).toEqual([
        'gw-processor-not-found',
        'gw-processor-platform-not-found',
        'gw-processor-platform-not-found',
      ]);
      const labels = {
        'ai-gateway-constructs.io/processor': 'gw-processor.platform',
        'ai-gateway-constructs.io/traffic-policy': 'gw-processor.platform',
      };
      expect(findAll(all, 'HTTPRoute').map((r: any) => r.metadata.labels)).toEqual([labels, labels, labels]);
      const selector = {
        group: 'gateway.networking.k8s.io',
        kind: 'HTTPRoute',
        matchLabels: { 'ai-gateway-constructs.io/processor': 'gw-processor.platform' },
      };
      const extProc = {
        processingMode: {
          request: { body: 'Buffered' },
          response: { body: 'Buffered', attributes: ['response.code_details'] },
          allowModeOverride: true,
        },
        messageTimeout: '15s',
        failOpen: false,
        metadata: { writableNamespaces: ['io.envoy.ai_gateway'] },
        // Per proxy replica: what the processor's 2 replicas of 10,000 streams hold, not Envoy Gateway's 1024.
        backendSettings: { circuitBreaker: { maxParallelRequests: 20000, maxPendingRequests: 20000 } },
      };
      expect(policies[0].spec).toEqual({
        targetSelectors: [selector],
        extProc: [{ backendRefs: [{ name: gateway.processorServiceName, port: 9002 }], ...extProc }],
      });
      expect(policies[1].spec).toEqual({
        targetSelectors: [selector],
        extProc: [
          { backendRefs: [{ name: gateway.processorServiceName, namespace: 'platform', port: 9002 }], ...extProc },
        ],
      });
      // One grant per namespace lets the route policies there use the processor Service.
      const grants = findAll(all, 'ReferenceGrant').filter(
        (g: any) => g.spec.from[0].kind === 'EnvoyExtensionPolicy',
      ) as any[];
      expect(grants.map((g) => [g.metadata.namespace, g.metadata.name, g.spec])).toEqual([
        [
          'platform',
          'gw-processor-from-team',
          {
            from: [{ group: 'gateway.envoyproxy.io', kind: 'EnvoyExtensionPolicy', namespace: 'team' }],
            to: [{ group: '', kind: 'Service', name: 'gw-processor' }],
          },
        ],
      ]);
    },
  );

  it(
    'gives the AIRoutes with default traffic settings one BackendTrafficPolicy per namespace, and a route with ' +
      'settings of its own a policy of its own, never both',
    () => {
      const app = Testing.app();
      const platform = new Chart(app, 'platform', { namespace: 'platform' });
      const team = new Chart(app, 'team', { namespace: 'team' });
      const gateway = new AIGateway(platform, 'Gateway', {
        name: 'gw',
        allowedRoutes: AllowedRoutes.fromNamespaces('platform', 'team'),
        processor: { replicas: 3, streamsPerReplica: 1_000 },
      });
      const openai = ProviderBackend.openAI(platform, 'OpenAI', {
        name: 'openai',
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
      });
      const rules = (model: string) => [{ models: [ModelMatch.exact(model)], backends: [{ backend: openai }] }];
      new AIRoute(platform, 'Local', { name: 'local', gateway, rules: rules('a') });
      new AIRoute(team, 'Chat', { name: 'chat', gateway, rules: rules('b') });
      new AIRoute(team, 'Other', { name: 'other', gateway, rules: rules('c') });
      // The derived default given explicitly is the default: the route shares the policy.
      new AIRoute(team, 'Same', { name: 'same', gateway, rules: rules('d'), maxParallelRequestsPerBackend: 3_000 });
      new AIRoute(team, 'Limited', { name: 'limited', gateway, rules: rules('e'), maxParallelRequestsPerBackend: 8 });
      new AIRoute(team, 'Retried', { name: 'retried', gateway, rules: rules('f'), retry: { attempts: 2 } });
      const all = synthAll(app);
      const policies = findAll(all, 'BackendTrafficPolicy') as any[];
      expect(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
        'platform/gw-processor',
        'team/gw-processor-platform',
        'team/limited',
        'team/retried',
      ]);
      expect(policies.map((p) => policyRoutes(all, p))).toEqual([
        ['platform/local'],
        ['team/chat', 'team/other', 'team/same'],
        ['team/limited'],
        ['team/retried'],
      ]);
      const breaker = { maxConnections: 3_000, maxPendingRequests: 3_000, maxParallelRequests: 3_000 };
      expect(policies[1].spec).toEqual({
        targetSelectors: [
          {
            group: 'gateway.networking.k8s.io',
            kind: 'HTTPRoute',
            matchLabels: { 'ai-gateway-constructs.io/traffic-policy': 'gw-processor.platform' },
          },
        ],
        // Merged into the Gateway's policy like a route's own, so the gateway's budgets still apply.
        mergeType: 'StrategicMerge',
        circuitBreaker: breaker,
      });
      // The same policy in the processor's namespace.
      expect(policies[0].spec).toEqual(policies[1].spec);
      expect(policies[0].metadata.labels).toEqual(policies[1].metadata.labels);
      expect(policies[3].spec).toMatchObject({
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'retried' }],
        mergeType: 'StrategicMerge',
        circuitBreaker: breaker,
      });
      // Only the routes without a policy of their own carry the second label.
      const routeLabels = Object.fromEntries(
        findAll(all, 'HTTPRoute').map((r: any) => [r.metadata.name, r.metadata.labels]),
      );
      expect(routeLabels.limited).toEqual({ 'ai-gateway-constructs.io/processor': 'gw-processor.platform' });
      expect(routeLabels.retried).toEqual(routeLabels.limited);
      expect(routeLabels.same['ai-gateway-constructs.io/traffic-policy']).toBe('gw-processor.platform');
    },
  );

  it('keeps the processor label of HTTPRoutes a valid label value when its names are long, and distinct', () => {
    const app = Testing.app();
    const longNamespace = `platform-${'p'.repeat(50)}`;
    const platform = new Chart(app, 'platform', { namespace: longNamespace });
    const team = new Chart(app, 'team', { namespace: 'team' });
    const gateways = ['a', 'b'].map(
      (suffix) =>
        new AIGateway(platform, `Gateway-${suffix}`, {
          name: `gateway-${'g'.repeat(40)}-${suffix}`,
          allowedRoutes: AllowedRoutes.fromNamespaces('team'),
        }),
    );
    const openai = ProviderBackend.openAI(platform, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    gateways.forEach(
      (gateway, i) =>
        new AIRoute(team, `Route${i}`, {
          name: `chat-${i}`,
          gateway,
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        }),
    );
    const all = synthAll(app);
    const values = findAll(all, 'HTTPRoute').map((r: any) => r.metadata.labels['ai-gateway-constructs.io/processor']);
    expect(new Set(values).size).toBe(2);
    for (const value of values) expect(value).toMatch(/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/);
    // Each gateway's policy in the team namespace selects its own route only.
    expect(findAll(all, 'EnvoyExtensionPolicy').map((p) => policyRoutes(all, p))).toEqual([
      ['team/chat-0'],
      ['team/chat-1'],
    ]);
  });

  it('runs the processor with the contract arguments, probes and a restricted security context', () => {
    const { gateway, manifests } = gatewayOnly();
    const all = manifests();
    const deployment = findOne(all, 'Deployment');
    const pod = (deployment as any).spec.template.spec;
    const container = pod.containers[0];
    expect(deployment.metadata.name).toBe('gw-processor');
    expect((deployment as any).spec.replicas).toBe(2);
    expect(container.image).toBe(`ghcr.io/ai-gateway-constructs/ai-gateway-processor:${libraryVersion()}`);
    expect(container.args).toEqual([
      '--config',
      '/etc/ai-gateway/config/config.json',
      '--secrets-dir',
      '/etc/ai-gateway/secrets',
      '--listen',
      '0.0.0.0:9002',
      '--admin',
      '0.0.0.0:9090',
      '--shutdown-delay-ms',
      '5000',
      '--drain-timeout-ms',
      '25000',
      '--stream-idle-timeout-ms',
      '300000',
    ]);
    // No routes yet: the shortest drain, and a grace period covering delay + drain.
    expect(pod.terminationGracePeriodSeconds).toBe(35);
    expect(container.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 9090 });
    expect(container.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 9090 });
    // Liveness only starts after the startup probe, which outlasts the processor's wait for a complete config set.
    const startup = container.startupProbe;
    expect(startup.httpGet).toMatchObject({ path: '/healthz', port: 9090 });
    expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(DEFAULT_CONFIG_WAIT_MS / 1000 + 20);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(container.resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '1', memory: '512Mi' },
    });
    expect(pod.serviceAccountName).toBe(gateway.serviceAccountName);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(container.volumeMounts).toContainEqual({
      mountPath: '/etc/ai-gateway/config',
      name: 'config',
      readOnly: true,
    });
    expect(pod.volumes).toContainEqual({ name: 'config', configMap: { name: gateway.configMapName } });

    const service = findOne(all, 'Service');
    expect(service.metadata.name).toBe(gateway.processorServiceName);
    expect((service as any).spec.ports).toEqual([
      { name: 'grpc', port: 9002, targetPort: 9002, appProtocol: 'kubernetes.io/h2c' },
      { name: 'admin', port: 9090, targetPort: 9090 },
    ]);
    expect(findOne(all, 'PodDisruptionBudget').spec).toEqual({
      maxUnavailable: 1,
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'ai-gateway-processor', 'app.kubernetes.io/instance': 'gw-processor' },
      },
    });
  });

  it('only lets the Envoy pods of this gateway reach the gRPC port; metrics optionally from one namespace', () => {
    const policy = findOne(
      gatewayOnly({ envoyGatewayNamespace: 'eg-system', processor: { metricsNamespace: 'monitoring' } }).manifests(),
      'NetworkPolicy',
    );
    expect(policy.spec).toEqual({
      podSelector: {
        matchLabels: { 'app.kubernetes.io/name': 'ai-gateway-processor', 'app.kubernetes.io/instance': 'gw-processor' },
      },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'eg-system' } },
              podSelector: {
                matchLabels: {
                  'gateway.envoyproxy.io/owning-gateway-name': 'gw',
                  'gateway.envoyproxy.io/owning-gateway-namespace': 'platform',
                },
              },
            },
          ],
          ports: [{ protocol: 'TCP', port: 9002 }],
        },
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
          ports: [{ protocol: 'TCP', port: 9090 }],
        },
      ],
    });
  });

  it('takes processor image, pull secrets, replicas and ServiceAccount annotations', () => {
    const all = gatewayOnly({
      processor: {
        image: ProcessorImage.fromDigest('registry.internal/ai/processor', `sha256:${'a'.repeat(64)}`),
        imagePullSecrets: ['regcred'],
        replicas: 3,
        serviceAccountAnnotations: { 'iam.gke.io/gcp-service-account': 'gw@project.iam.gserviceaccount.com' },
      },
    }).manifests();
    const deployment = findOne(all, 'Deployment') as any;
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.template.spec.containers[0].image).toBe(
      `registry.internal/ai/processor@sha256:${'a'.repeat(64)}`,
    );
    expect(deployment.spec.template.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(findOne(all, 'ServiceAccount').metadata).toMatchObject({
      annotations: { 'iam.gke.io/gcp-service-account': 'gw@project.iam.gserviceaccount.com' },
    });
  });

  it('writes a config.json the processor schema accepts, with every attached route', () => {
    const { app, team, gateway, openai } = gatewayFixture();
    new AIRoute(team, 'Route', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const config = parseProcessorConfig(JSON.parse(findOne(synthAll(app), 'ConfigMap').data['config.json']));
    expect(config.routes.map((r) => r.name)).toEqual(['team/chat']);
    expect(config.backends.map((b) => b.name)).toEqual(['openai.platform.chat.team']);
    expect(config.circuitBreaker).toEqual({ failureThreshold: 5, openDurationMs: 30000 });
  });

  it('exposes the names a user needs', () => {
    const { gateway } = gatewayOnly();
    expect({
      gatewayName: gateway.gatewayName,
      gatewayNamespace: gateway.gatewayNamespace,
      processorServiceName: gateway.processorServiceName,
      configMapName: gateway.configMapName,
      serviceAccountName: gateway.serviceAccountName,
    }).toEqual({
      gatewayName: 'gw',
      gatewayNamespace: 'platform',
      processorServiceName: 'gw-processor',
      configMapName: 'gw-processor-config',
      serviceAccountName: 'gw-processor',
    });
  });

  it('derives a deterministic DNS-1123 name from the construct path when none is given', () => {
    const build = () => {
      const app = new App();
      return new AIGateway(new Chart(app, 'Platform'), 'My_Gateway').gatewayName;
    };
    expect(build()).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    expect(build()).toBe(build());
  });

  it('throws if the name is over the Kubernetes limit', () => {
    expect(() => gatewayOnly({ name: 'g'.repeat(64) })).toThrow(
      /platform\/Gateway: invalid name "g{64}": is 64 characters long; Kubernetes allows at most 63 here/,
    );
  });

  it('throws if the name is not DNS-1123', () => {
    expect(() => gatewayOnly({ name: 'My_Gateway' })).toThrow(
      /platform\/Gateway: invalid name "My_Gateway": must be a DNS-1035 label/,
    );
  });

  it('throws if no listener is left', () => {
    expect(() => gatewayOnly({ http: { enabled: false } })).toThrow(
      /invalid http.enabled false: a gateway needs at least one listener/,
    );
  });

  it('throws if HTTPS has no certificate', () => {
    expect(() => gatewayOnly({ https: { certificateSecretNames: [] } })).toThrow(
      /invalid https.certificateSecretNames \[\]: needs at least one TLS Secret/,
    );
  });

  it('throws if the processor message timeout is not a positive whole number of milliseconds', () => {
    expect(() => gatewayOnly({ processor: { messageTimeout: Duration.millis(0) } })).toThrow(
      /platform\/Gateway\/Processor: invalid processor.messageTimeout "0ms": must be a positive whole number of milliseconds/,
    );
  });

  it('throws if a listener hostname is over the DNS limit', () => {
    const hostname = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example.com`;
    expect(() => gatewayOnly({ http: { hostname } })).toThrow(
      /invalid http.hostname "a{60}\..*": must be a lower-case DNS name, optionally starting with "\*\." of at most 253 characters/,
    );
  });

  it('throws if the processor replicas are not positive', () => {
    expect(() => gatewayOnly({ processor: { replicas: 0 } })).toThrow(
      /invalid processor.replicas 0: must be a positive integer/,
    );
  });
});

describeWithShared('crds/jsonschema', 'AIGateway manifests', (jsonschemaDir) => {
  it('validate with every option set', () => {
    const all = gatewayOnly({
      gatewayClass: GatewayClass.create('ai'),
      https: { certificateSecretNames: ['tls'], port: 8443, hostname: '*.example.com' },
      http: { port: 8080 },
      allowedRoutes: AllowedRoutes.fromNamespaceLabels({ 'ai-gateway': 'enabled' }),
      processor: {
        metricsNamespace: 'monitoring',
        imagePullSecrets: ['regcred'],
        proxyDeployMode: ProxyDeployMode.gatewayNamespace(),
      },
      proxyDrainTimeout: Duration.seconds(90),
      jwt: {
        issuer: 'https://login.example.com',
        jwksUri: 'https://login.example.com/jwks.json',
        claimToHeaders: { sub: 'x-user' },
      },
    }).manifests();
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });
});
