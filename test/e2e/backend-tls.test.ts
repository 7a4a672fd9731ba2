/**
 * Backends with TLS, as their own `tls` settings configure them (`sni` = the provider host, system CAs plus a test
 * CA): the gateway connects with the provider's name as SNI and accepts only a certificate for that name from a
 * trusted CA; a certificate for another name, or from an unknown CA, is a connection failure (503) and no request
 * reaches the server.
 */
import { HELLO, rawChat } from './support/clients';
import { FAKE_CREDENTIALS } from './support/credentials';
import { startAnthropicFake, startOpenAIFake, type FakeProvider } from './support/fake-providers';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { PREFIX_VARIANTS, providersScenario } from './support/scenarios';
import { createTestCa, opensslAvailable, type TestCa } from './support/test-ca';

jest.setTimeout(60_000);

const openssl = opensslAvailable();
if (!openssl && (process.env.CI === 'true' || process.env.CI === '1'))
  throw new Error('openssl is required by test/e2e/backend-tls under CI');
if (!openssl)
  process.stdout.write('SKIPPED: test/e2e/backend-tls needs the openssl command to make test certificates\n');
const describeTls = clusterMode() || !openssl ? describe.skip : describe;

describeTls("Backends over TLS (the Backend's own TLS settings)", () => {
  let ca: TestCa;
  let strangerCa: TestCa;
  let openai: FakeProvider;
  let groq: FakeProvider;
  let anthropic: FakeProvider;
  let run: RunningScenario;

  beforeAll(async () => {
    ca = createTestCa();
    strangerCa = createTestCa();
    openai = await startOpenAIFake({
      name: 'openai',
      apiKey: FAKE_CREDENTIALS.openaiKey,
      tls: ca.issue(['api.openai.com']),
    });
    groq = await startOpenAIFake({
      name: 'groq',
      apiKey: FAKE_CREDENTIALS.groqKey,
      pathPrefix: '/openai/v1',
      tls: ca.issue(['not-groq.example.com']),
    });
    anthropic = await startAnthropicFake({
      name: 'anthropic',
      apiKey: FAKE_CREDENTIALS.anthropicKey,
      tls: strangerCa.issue(['api.anthropic.com']),
    });
    run = await startScenario(providersScenario(PREFIX_VARIANTS[0]), {
      backendUrls: { 'e2e/openai': openai.url, 'e2e/groq': groq.url, 'e2e/anthropic': anthropic.url },
      dataPlane: { extraCaCertificates: [ca.caCert] },
    });
  });
  afterAll(async () => {
    await run?.close();
    await Promise.all([openai, groq, anthropic].map((fake) => fake?.close()));
    ca?.close();
    strangerCa?.close();
  });

  it("connects with the provider's name as SNI and Host, and verifies its certificate", async () => {
    expect(openai.url.startsWith('https://127.0.0.1:')).toBe(true);
    const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: HELLO });
    expect(answer.status).toBe(200);
    expect(openai.requests.map((r) => [r.tlsServerName, r.headers.host, r.rejected])).toEqual([
      ['api.openai.com', 'api.openai.com', undefined],
    ]);
  });

  it('a certificate for another name fails the connection (503), nothing reaches the server', async () => {
    const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, { model: 'llama-3.3-70b', messages: HELLO });
    expect(answer.status).toBe(503);
    expect(groq.requests).toEqual([]);
  });

  it('a certificate from an untrusted CA fails the connection (503), nothing reaches the server', async () => {
    const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, {
      model: 'claude-sonnet-4',
      messages: HELLO,
      max_tokens: 16,
    });
    expect(answer.status).toBe(503);
    expect(anthropic.requests).toEqual([]);
  });
});
