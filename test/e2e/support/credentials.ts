/** The names, credentials and labels the fakes, the scenarios and the cluster run share (never real credentials). */

/** The fakes every run starts (see harness.ts for their credentials). */
export type FakeName = 'openai' | 'groq' | 'azure' | 'azure-entra' | 'anthropic' | 'bedrock' | 'vertex' | 'vllm';

/**
 * What a client sends as its own credential. The gateway must not pass it on to a provider it authenticates to;
 * a backend without credentials receives it unchanged (the processor's passthrough).
 */
export const CLIENT_KEY = 'client-e2e-key-must-not-leak';

/** Credentials the fakes accept (never real ones). */
export const FAKE_CREDENTIALS = {
  openaiKey: 'sk-e2e-openai',
  groqKey: 'gsk-e2e-groq',
  azureKey: 'azure-e2e-key',
  azureBearer: 'azure-e2e-entra-token',
  anthropicKey: 'sk-ant-e2e',
  aws: { accessKeyId: 'AKIAE2EEXAMPLE', secretAccessKey: 'e2e/aws/secret/key/EXAMPLE' },
  awsRegion: 'us-east-1',
  gcpSubjectToken: 'e2e-workload-identity-subject-token',
  gcpAccessToken: 'ya29.e2e-access-token',
  gcpProject: 'e2e-project',
  gcpRegion: 'us-central1',
  azureApiVersion: '2025-01-01-preview',
} as const;

/** Label of the fake providers' pods in a cluster run (scripts/e2e/manifests.ts). */
export const FAKES_APP_LABEL = { app: 'e2e-fake-providers' };
/** Port of the fake playing the self-hosted model server (see FAKE_PORTS in harness.ts). */
export const VLLM_TARGET_PORT = 9108;
