import { Chart, Testing } from 'cdk8s';
import { AIRoute, Credentials, ModelMatch, ProviderBackend } from '../lib';
import { gatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, synthAll } from './support/synth';

const key = (secretName: string) => ({ secretName, key: 'api-key' });

function chart() {
  const app = Testing.app();
  return { app, chart: new Chart(app, 'platform', { namespace: 'platform' }) };
}

describe('ProviderBackend', () => {
  it(
    'is created by its factories only: the constructor, which takes the settings a factory ' + 'decided, is private',
    () => {
      const { chart: scope } = chart();
      // @ts-expect-error the constructor of ProviderBackend is private (tsc checks this line)
      const construct = () => new ProviderBackend(scope, 'Direct', { provider: 'OpenAI' });
      expect(construct).toBeInstanceOf(Function);
      expect(
        ProviderBackend.openAI(scope, 'OpenAI', { credentials: Credentials.apiKey(key('openai')) }),
      ).toBeInstanceOf(ProviderBackend);
    },
  );

  it('emits one Backend whose TLS settings name the provider hostname (SNI, certificate) and the system CAs', () => {
    const { app, chart: c } = chart();
    ProviderBackend.openAI(c, 'OpenAI', { name: 'openai', credentials: Credentials.apiKey(key('openai')) });
    const all = synthAll(app);
    const backend = findOne(all, 'Backend', 'openai');
    expect(backend.apiVersion).toBe('gateway.envoyproxy.io/v1alpha1');
    expect(backend.metadata).toEqual({ name: 'openai', namespace: 'platform' });
    expect(backend.spec).toEqual({
      endpoints: [{ fqdn: { hostname: 'api.openai.com', port: 443 } }],
      tls: { sni: 'api.openai.com', wellKnownCACertificates: 'System' },
    });
    // No policy beside it: the TLS settings cannot be applied after, pruned before or rejected apart from the Backend.
    expect(findAll(all, 'BackendTLSPolicy')).toEqual([]);
  });

  it.each([
    [
      'openAI',
      () => ProviderBackend.openAI(chart().chart, 'B', { credentials: Credentials.apiKey(key('k')) }),
      { name: 'OpenAI', pathPrefix: '/v1' },
      'api.openai.com',
    ],
    [
      'azureOpenAI',
      () =>
        ProviderBackend.azureOpenAI(chart().chart, 'B', {
          hostname: 'res.openai.azure.com',
          apiVersion: '2025-01-01-preview',
          credentials: Credentials.apiKey(key('k')),
        }),
      { name: 'AzureOpenAI', apiVersion: '2025-01-01-preview' },
      'res.openai.azure.com',
    ],
    [
      'anthropic',
      () => ProviderBackend.anthropic(chart().chart, 'B', { credentials: Credentials.apiKey(key('k')) }),
      { name: 'Anthropic', version: '2023-06-01' },
      'api.anthropic.com',
    ],
    [
      'awsBedrock',
      () =>
        ProviderBackend.awsBedrock(chart().chart, 'B', {
          region: 'eu-west-1',
          credentials: Credentials.awsDefaultChain(),
        }),
      { name: 'AWSBedrock' },
      'bedrock-runtime.eu-west-1.amazonaws.com',
    ],
    [
      'awsAnthropic',
      () =>
        ProviderBackend.awsAnthropic(chart().chart, 'B', {
          region: 'us-east-1',
          credentials: Credentials.awsDefaultChain(),
        }),
      { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
      'bedrock-runtime.us-east-1.amazonaws.com',
    ],
    [
      'gcpVertexAI',
      () =>
        ProviderBackend.gcpVertexAI(chart().chart, 'B', {
          projectId: 'p',
          region: 'us-central1',
          credentials: Credentials.gcpWorkloadIdentity(),
        }),
      { name: 'GCPVertexAI', projectId: 'p', region: 'us-central1' },
      'us-central1-aiplatform.googleapis.com',
    ],
    [
      'gcpAnthropic',
      () =>
        ProviderBackend.gcpAnthropic(chart().chart, 'B', {
          projectId: 'p',
          region: 'global',
          credentials: Credentials.gcpWorkloadIdentity(),
        }),
      { name: 'GCPAnthropic', projectId: 'p', region: 'global', anthropicVersion: 'vertex-2023-10-16' },
      'aiplatform.googleapis.com',
    ],
    [
      'openAICompatible',
      () => ProviderBackend.openAICompatible(chart().chart, 'B', { baseUrl: 'https://api.groq.com/openai/v1' }),
      // Most compatible servers speak only Chat Completions: the Responses API is translated for them.
      { name: 'OpenAI', pathPrefix: '/openai/v1', responsesApi: 'chatCompletions' },
      'api.groq.com',
    ],
    [
      'openAICompatible with its own Responses API',
      () =>
        ProviderBackend.openAICompatible(chart().chart, 'B', {
          baseUrl: 'https://llm.example.com/v1',
          servesResponsesApi: true,
        }),
      { name: 'OpenAI', pathPrefix: '/v1' },
      'llm.example.com',
    ],
  ])('%s sets the schema and host', (_name, build, schema, hostname) => {
    const backend = build();
    expect(backend.schema).toEqual(schema);
    expect(backend.hostname).toBe(hostname);
    expect(backend.tls).toBe(true);
    expect(backend.port).toBe(443);
  });

  it('translates the Responses API for self-hosted servers unless they serve it', () => {
    const { chart: c } = chart();
    expect(ProviderBackend.kubernetesService(c, 'Vllm', { serviceName: 'vllm', port: 8000 }).schema).toEqual({
      name: 'OpenAI',
      pathPrefix: '/v1',
      responsesApi: 'chatCompletions',
    });
    const own = ProviderBackend.kubernetesService(c, 'Own', { serviceName: 'own', port: 80, servesResponsesApi: true });
    expect(own.schema).toEqual({ name: 'OpenAI', pathPrefix: '/v1' });
  });

  it('renders credentials as Secret file references only', () => {
    const { chart: c } = chart();
    const bedrock = ProviderBackend.awsBedrock(c, 'Bedrock', {
      region: 'us-east-1',
      credentials: Credentials.awsSharedCredentials(
        { secretName: 'aws', key: 'credentials' },
        { profile: 'ai', perRequestCredentials: true },
      ),
    });
    expect(bedrock._toConfig('x').auth).toEqual({
      type: 'AWSSigV4',
      region: 'us-east-1',
      credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'credentials' }, profile: 'ai' },
      perRequestCredentials: true,
    });
    const azure = ProviderBackend.azureOpenAI(c, 'Azure', {
      hostname: 'r.openai.azure.com',
      apiVersion: 'v',
      credentials: Credentials.azureEntra({
        tenantId: 't',
        clientId: 'c',
        clientSecret: { secretName: 'entra', key: 'secret' },
      }),
    });
    expect(azure._toConfig('x').auth).toEqual({
      type: 'AzureEntra',
      tenantId: 't',
      clientId: 'c',
      clientSecret: { secretName: 'entra', key: 'secret' },
    });
    const vertex = ProviderBackend.gcpVertexAI(c, 'Vertex', {
      projectId: 'p',
      region: 'us-central1',
      credentials: Credentials.gcpServiceAccountKey({ secretName: 'gcp', key: 'sa.json' }),
    });
    expect(vertex._toConfig('x').auth).toEqual({
      type: 'GCP',
      credentials: { source: 'ServiceAccountKey', secret: { secretName: 'gcp', key: 'sa.json' } },
    });
  });

  it('passes header and body mutations to the processor config', () => {
    const { chart: c } = chart();
    const backend = ProviderBackend.openAI(c, 'OpenAI', {
      credentials: Credentials.bearerToken(key('token')),
      headerMutation: { set: { 'OpenAI-Organization': 'org-1' }, remove: ['x-debug'] },
      bodyMutation: { set: { temperature: 0.2 }, remove: ['user'] },
    });
    expect(backend._toConfig('x')).toMatchObject({
      headerMutation: { set: [{ name: 'openai-organization', value: 'org-1' }], remove: ['x-debug'] },
      bodyMutation: { set: [{ path: 'temperature', value: '0.2' }], remove: ['user'] },
    });
  });

  it('routes in-cluster model servers straight to their Service, over plain HTTP', () => {
    const { app, team, gateway } = gatewayFixture();
    const vllm = ProviderBackend.kubernetesService(team, 'Vllm', {
      serviceName: 'vllm',
      port: 8000,
      serviceNamespace: 'models',
    });
    new AIRoute(team, 'Route', {
      name: 'local',
      gateway,
      rules: [{ models: [ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
    });
    const all = synthAll(app);
    const route = findOne(all, 'HTTPRoute', 'local');
    expect(route.spec.rules[0].backendRefs).toEqual([{ name: 'vllm', namespace: 'models', port: 8000 }]);
    // No Host rewrite: only the removal of the gateway's internal header.
    expect(route.spec.rules[0].filters).toEqual([
      { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['x-ai-gateway-backend'] } },
    ]);
    const grant = findOne(all, 'ReferenceGrant', 'ai-services-from-team');
    expect(grant.metadata.namespace).toBe('models');
    expect(grant.spec).toEqual({
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'team' }],
      to: [{ group: '', kind: 'Service', name: 'vllm' }],
    });
    expect(findAll(all, 'Backend').map((b) => b.metadata.name)).toEqual(['openai', 'anthropic']);
    expect(vllm._toConfig('x').endpoint).toEqual({ hostname: 'vllm.models.svc.cluster.local', port: 8000, tls: false });
  });

  it('throws if credentials are missing for a provider that needs them', () => {
    expect(() => ProviderBackend.openAI(chart().chart, 'OpenAI', {} as never)).toThrow(
      /platform\/OpenAI: invalid credentials \(missing\): provider OpenAI needs credentials; pass one of Credentials.apiKey\(\), Credentials.bearerToken\(\)/,
    );
    expect(() => ProviderBackend.awsBedrock(chart().chart, 'Bedrock', { region: 'us-east-1' } as never)).toThrow(
      /provider AWSBedrock needs credentials/,
    );
  });

  it('throws naming serviceName, not the derived hostname, if an in-cluster Service name is invalid', () => {
    expect(() => ProviderBackend.kubernetesService(chart().chart, 'Vllm', { serviceName: 'vLLM', port: 8000 })).toThrow(
      /platform\/Vllm: invalid serviceName "vLLM": must be a DNS-1035 label/,
    );
  });

  it('throws if the credentials do not fit the provider', () => {
    expect(() =>
      ProviderBackend.anthropic(chart().chart, 'Anthropic', { credentials: Credentials.awsDefaultChain() }),
    ).toThrow(
      /invalid credentials "Credentials.awsDefaultChain\(\)": provider Anthropic accepts Credentials.apiKey\(\)/,
    );
  });

  it('throws if the backend name is over the Kubernetes limit', () => {
    expect(() =>
      ProviderBackend.openAI(chart().chart, 'OpenAI', {
        name: 'o'.repeat(64),
        credentials: Credentials.apiKey(key('k')),
      }),
    ).toThrow(/invalid name "o{64}": is 64 characters long/);
  });

  it('throws on a bad base URL or region', () => {
    expect(() => ProviderBackend.openAICompatible(chart().chart, 'Groq', { baseUrl: 'api.groq.com' })).toThrow(
      /invalid Groq.baseUrl "api.groq.com"/,
    );
    expect(() =>
      ProviderBackend.awsBedrock(chart().chart, 'Bedrock', {
        region: 'US East',
        credentials: Credentials.awsDefaultChain(),
      }),
    ).toThrow(/invalid Bedrock.region "US East"/);
  });
});

describeWithShared('crds/jsonschema', 'ProviderBackend manifests', (jsonschemaDir) => {
  it('validate for every provider', () => {
    const { app, chart: c } = chart();
    ProviderBackend.openAI(c, 'A', { credentials: Credentials.apiKey(key('k')) });
    ProviderBackend.openAICompatible(c, 'B', { baseUrl: 'http://vllm.models:8000' });
    ProviderBackend.azureOpenAI(c, 'C', {
      hostname: 'r.openai.azure.com',
      apiVersion: 'v',
      credentials: Credentials.apiKey(key('k')),
    });
    ProviderBackend.anthropic(c, 'D', { credentials: Credentials.apiKey(key('k')) });
    ProviderBackend.awsBedrock(c, 'E', { region: 'us-east-1', credentials: Credentials.awsDefaultChain() });
    ProviderBackend.awsAnthropic(c, 'F', { region: 'us-east-1', credentials: Credentials.awsDefaultChain() });
    ProviderBackend.gcpVertexAI(c, 'G', {
      projectId: 'p',
      region: 'us-central1',
      credentials: Credentials.gcpWorkloadIdentity(),
    });
    ProviderBackend.gcpAnthropic(c, 'H', {
      projectId: 'p',
      region: 'us-east5',
      credentials: Credentials.gcpWorkloadIdentity(),
    });
    const all = synthAll(app);
    const backends = findAll(all, 'Backend') as unknown as {
      spec: { endpoints: { fqdn: { hostname: string } }[]; tls?: { sni: string } };
    }[];
    expect(backends).toHaveLength(8);
    // Every provider but the plain-HTTP one connects over TLS, verified against its own hostname.
    const overTls = backends.filter((b) => b.spec.tls);
    expect(overTls).toHaveLength(7);
    expect(overTls.map((b) => b.spec.tls?.sni)).toEqual(overTls.map((b) => b.spec.endpoints[0].fqdn.hostname));
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });
});
