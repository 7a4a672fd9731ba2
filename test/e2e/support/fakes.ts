/**
 * The set of fake providers every scenario uses, with the credentials of FAKE_CREDENTIALS: on ephemeral ports in
 * the test process, or on the fixed FAKE_PORTS when they run as one in-cluster process
 * (scripts/e2e/fake-providers.ts). Kept free of the data plane so that process bundles small.
 */
import {
  startAnthropicFake,
  startAzureOpenAIFake,
  startBedrockFake,
  startGcpTokenFake,
  startOpenAIFake,
  startVertexFake,
  type FakeProvider,
} from './fake-providers';
import { CLIENT_KEY, FAKE_CREDENTIALS, VLLM_TARGET_PORT, type FakeName } from './credentials';

/** Fixed ports of the fakes when they run as one in-cluster process (scripts/e2e/fake-providers.ts). */
export const FAKE_PORTS: Record<FakeName | 'gcp-token', number> = {
  openai: 9101,
  groq: 9102,
  azure: 9103,
  'azure-entra': 9104,
  anthropic: 9105,
  bedrock: 9106,
  vertex: 9107,
  vllm: VLLM_TARGET_PORT,
  'gcp-token': 9109,
};

export interface StartedFakes {
  readonly fakes: Record<FakeName, FakeProvider>;
  /** The GCP token endpoint (STS) the processor's application default credentials point at. */
  readonly gcpToken: FakeProvider;
  close(): Promise<void>;
}

/** The fakes with the credentials of FAKE_CREDENTIALS, on ephemeral ports or on FAKE_PORTS. */
export async function startFakes(options: { fixedPorts?: boolean; host?: string } = {}): Promise<StartedFakes> {
  const port = (name: FakeName | 'gcp-token') => (options.fixedPorts ? FAKE_PORTS[name] : undefined);
  const host = options.host;
  const c = FAKE_CREDENTIALS;
  const started = await Promise.all([
    startOpenAIFake({ name: 'openai', apiKey: c.openaiKey, port: port('openai'), host }),
    startOpenAIFake({ name: 'groq', apiKey: c.groqKey, pathPrefix: '/openai/v1', port: port('groq'), host }),
    startAzureOpenAIFake({
      name: 'azure',
      apiVersion: c.azureApiVersion,
      auth: { apiKey: c.azureKey },
      port: port('azure'),
      host,
    }),
    startAzureOpenAIFake({
      name: 'azure-entra',
      apiVersion: c.azureApiVersion,
      auth: { bearerToken: c.azureBearer },
      port: port('azure-entra'),
      host,
    }),
    startAnthropicFake({ name: 'anthropic', apiKey: c.anthropicKey, port: port('anthropic'), host }),
    startBedrockFake({ name: 'bedrock', region: c.awsRegion, key: c.aws, port: port('bedrock'), host }),
    startVertexFake({
      name: 'vertex',
      projectId: c.gcpProject,
      region: c.gcpRegion,
      accessToken: c.gcpAccessToken,
      port: port('vertex'),
      host,
    }),
    // A backend without credentials gets the client's own Authorization (the processor replaces client
    // credentials only when it sets the backend's), as a model server started with --api-key expects.
    startOpenAIFake({ name: 'vllm', apiKey: CLIENT_KEY, pathPrefix: '/api/v1', port: port('vllm'), host }),
    startGcpTokenFake({
      name: 'gcp-token',
      subjectToken: c.gcpSubjectToken,
      accessToken: c.gcpAccessToken,
      port: port('gcp-token'),
      host,
    }),
  ]);
  const [openai, groq, azure, azureEntra, anthropic, bedrock, vertex, vllm, gcpToken] = started;
  return {
    fakes: { openai, groq, azure, 'azure-entra': azureEntra, anthropic, bedrock, vertex, vllm },
    gcpToken,
    close: async () => {
      await Promise.all(started.map((fake) => fake.close()));
    },
  };
}
