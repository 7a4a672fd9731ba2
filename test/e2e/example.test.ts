/**
 * `examples/cdk8s/main.ts` as written, run by the local data plane with its three Backends played by the fakes:
 * OpenAI, Anthropic (the Anthropic endpoint too) and Bedrock through the AWS default credential chain, the
 * 70/30 split of claude-sonnet-4, nova-pro on Bedrock (the README's broken case before issue 10), and the
 * tenant header its budgets require.
 */
import {
  anthropicClient,
  describeScenario,
  HELLO,
  leakedClientCredentials,
  openAIClient,
  rawChat,
} from './support/clients';
import { answerText } from './support/fake-providers';
import { redisUrlForTests } from '../support/redis';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { exampleScenario } from './support/scenarios';

jest.setTimeout(120_000);

const TENANT = { 'x-tenant-id': 'acme' };

describeScenario('example', () => {
  let run: RunningScenario;

  beforeAll(async () => {
    run = await startScenario(exampleScenario(), { redisUrl: clusterMode() ? undefined : redisUrlForTests() });
  });
  afterAll(() => run?.close());
  beforeEach(async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  it('gpt-4o-mini goes to OpenAI with the platform key', async () => {
    const completion = await openAIClient(`${run.gatewayUrl}/v1`, TENANT).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: HELLO,
    });
    expect(completion.choices[0].message.content).toBe(answerText('openai', 'gpt-4o-mini'));
    const [received] = await run.fakes.openai.records();
    expect(received.path).toBe('/v1/chat/completions');
    expect(received.rejected).toBeUndefined();
    expect(leakedClientCredentials(received)).toEqual([]);
  });

  it('nova-pro goes to Bedrock Converse, signed with the default chain credentials', async () => {
    const completion = await openAIClient(`${run.gatewayUrl}/v1`, TENANT).chat.completions.create({
      model: 'nova-pro',
      messages: HELLO,
    });
    expect(completion.choices[0].message.content).toBe(answerText('bedrock', 'us.amazon.nova-pro-v1:0'));
    const [received] = await run.fakes.bedrock.records();
    expect(received.path).toBe('/model/us.amazon.nova-pro-v1:0/converse');
    expect(received.headers.host).toBe('bedrock-runtime.us-east-1.amazonaws.com');
    expect(received.rejected).toBeUndefined();
  });

  it('nova-pro streaming: Bedrock ConverseStream (eventstream) becomes OpenAI SSE', async () => {
    const stream = openAIClient(`${run.gatewayUrl}/v1`, TENANT).chat.completions.stream({
      model: 'nova-pro',
      messages: HELLO,
      stream_options: { include_usage: true },
    });
    const completion = await stream.finalChatCompletion();
    expect(completion.choices[0].message.content).toBe(answerText('bedrock', 'us.amazon.nova-pro-v1:0'));
    expect((await run.fakes.bedrock.records())[0].path).toBe('/model/us.amazon.nova-pro-v1:0/converse-stream');
  });

  it('claude-sonnet-4 on the Anthropic endpoint (/anthropic/v1/messages)', async () => {
    const message = await anthropicClient(`${run.gatewayUrl}/anthropic`, TENANT).messages.create({
      model: 'claude-sonnet-4',
      max_tokens: 64,
      messages: HELLO,
    });
    const text = (message.content[0] as { text: string }).text;
    expect([
      answerText('anthropic', 'claude-sonnet-4-20250514'),
      answerText('bedrock', 'us.anthropic.claude-sonnet-4-20250514-v1:0'),
    ]).toContain(text);
  });

  it('claude-sonnet-4 splits about 70/30 between Anthropic and Bedrock', async () => {
    // 0.15 is more than four standard deviations of the Anthropic share over 160 requests.
    const requests = 160;
    for (let i = 0; i < requests; i++) {
      const answer = await rawChat(
        `${run.gatewayUrl}/v1/chat/completions`,
        { model: 'claude-sonnet-4', messages: HELLO, max_tokens: 16 },
        TENANT,
      );
      expect(answer.status).toBe(200);
    }
    const anthropic = (await run.fakes.anthropic.records()).filter((r) => !r.rejected).length;
    const bedrock = (await run.fakes.bedrock.records()).filter((r) => !r.rejected).length;
    expect(anthropic + bedrock).toBe(requests);
    expect(Math.abs(anthropic / requests - 0.7)).toBeLessThanOrEqual(0.15);
  });

  it('a request without the tenant header its budgets key on is refused with 400 before any provider', async () => {
    const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: HELLO });
    expect(answer.status).toBe(400);
    expect(await run.fakes.openai.records()).toEqual([]);
  });
});
