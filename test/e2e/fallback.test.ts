/**
 * Fallback within one request, through the local data plane with the official SDKs (issue 17). The primaries are
 * servers this test controls (failing with 503, 429 or 500) or an address nothing listens on; the processor sends the
 * same client request, translated and signed for the next priority's provider, itself, and relays that answer in
 * Envoy's FULL_DUPLEX_STREAMED response mode. Budgets charge only the attempt that answered.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_USAGE } from './support/fake-providers';
import { anthropicClient, describeScenario, HELLO, openAIClient, rawChat } from './support/clients';
import { startScenario, type RunningScenario } from './support/harness';
import { countersContaining } from './support/redis';
import { CASE_22_MODEL, fallbackScenario } from './support/scenarios';
import { redisUrlForTests } from '../support/redis';
import { sharedPath } from '../support/shared';

jest.setTimeout(120_000);

const COST = DEFAULT_USAGE.input + DEFAULT_USAGE.output;
/**
 * Room for two answered requests per tenant: Envoy's rate-limit service admits a request while the tokens counted so
 * far do not exceed the limit, so after two answers (2 × COST > limit) the third is refused.
 */
const TENANT_TOKENS = 2 * COST - 1;
const redisUrl = redisUrlForTests();

/** What a controlled primary answers next. */
type Behaviour = { kind: 'error'; status: number; message: string } | { kind: 'case22'; body: Buffer };

/** An OpenAI-compatible server whose answers the test decides; it records what it received. */
class ControlledServer {
  readonly received: Array<{ path: string; model: unknown; stream: unknown }> = [];
  private readonly plan: Behaviour[] = [];
  private server!: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on('data', (chunk: Buffer) => parts.push(chunk));
      request.on('end', () => {
        let body: { model?: unknown; stream?: unknown } = {};
        try {
          body = JSON.parse(Buffer.concat(parts).toString()) as typeof body;
        } catch {
          // recorded as it is
        }
        this.received.push({ path: request.url ?? '', model: body.model, stream: body.stream });
        const next = this.plan.shift() ?? { kind: 'error', status: 503, message: 'unplanned request' };
        if (next.kind === 'case22') {
          response.writeHead(200, { 'content-type': 'application/json', 'x-model': String(body.model) });
          response.end(next.body);
          return;
        }
        response.writeHead(next.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { message: next.message, type: 'server_error', code: null } }));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  next(...behaviours: Behaviour[]): void {
    this.plan.push(...behaviours);
  }

  clear(): void {
    this.received.length = 0;
    this.plan.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function unusedPort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describeScenario('fallback', () => {
  const namespace = `fallback-${randomBytes(4).toString('hex')}`;
  let run: RunningScenario;
  let primary: ControlledServer;
  let secondary: ControlledServer;

  const tenant = (): Record<string, string> => ({ 'x-tenant-id': `t-${randomBytes(4).toString('hex')}` });

  beforeAll(async () => {
    primary = await new ControlledServer().start();
    secondary = await new ControlledServer().start();
    run = await startScenario(fallbackScenario(namespace, TENANT_TOKENS), {
      redisUrl,
      backendUrls: {
        [`${namespace}/groq`]: primary.url,
        [`${namespace}/vllm`]: secondary.url,
        [`${namespace}/azure`]: `http://127.0.0.1:${await unusedPort()}`,
      },
    });
  });
  afterAll(async () => {
    await run?.close();
    await primary?.close();
    await secondary?.close();
  });
  beforeEach(async () => {
    primary.clear();
    secondary.clear();
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  /** `ai_gateway_fallbacks_total` of the chat route from one backend (name contains `from`) to another, by reason. */
  async function fallbackCount(from: string, to: string, reason: string): Promise<number> {
    const scraped = await Promise.all(
      run.processors!.processors.map(async (p) => (await fetch(`http://${p.adminAddress}/metrics`)).text()),
    );
    const pattern = new RegExp(
      `^ai_gateway_fallbacks_total\\{route="${namespace}/chat",from_backend="[^"]*${from}[^"]*",` +
        `to_backend="[^"]*${to}[^"]*",reason="${reason}"\\} (\\d+)`,
      'm',
    );
    const match = pattern.exec(scraped.join('\n'));
    return match ? Number(match[1]) : 0;
  }

  it('a primary answering 503 is replaced by the fallback provider, translated for it (OpenAI SDK)', async () => {
    primary.next({ kind: 'error', status: 503, message: 'overloaded' });
    const client = openAIClient(`${run.gatewayUrl}/v1`, tenant());
    const answer = await client.chat.completions.create({ model: 'resilient-model', messages: HELLO });
    expect(answer.choices[0].message.content).toBe('Hello from anthropic (claude-fallback)');
    expect(answer.usage).toMatchObject({ prompt_tokens: DEFAULT_USAGE.input, completion_tokens: DEFAULT_USAGE.output });
    expect(primary.received).toEqual([
      { path: '/openai/v1/chat/completions', model: 'resilient-model', stream: undefined },
    ]);
    const anthropic = (await run.fakes.anthropic.records()).filter((r) => r.rejected === undefined);
    expect(anthropic).toHaveLength(1);
    expect(anthropic[0].path).toBe('/v1/messages');
    expect(JSON.parse(anthropic[0].body)).toMatchObject({ model: 'claude-fallback' });
    expect(await fallbackCount('groq', 'anthropic', 'status')).toBeGreaterThan(0);
  });

  it('a primary answering 429 fails over too, for an Anthropic client', async () => {
    primary.next({ kind: 'error', status: 429, message: 'slow down' });
    const client = anthropicClient(`${run.gatewayUrl}/anthropic`, tenant());
    const answer = await client.messages.create({ model: 'resilient-model', max_tokens: 64, messages: HELLO });
    expect(answer.content).toEqual([{ type: 'text', text: 'Hello from anthropic (claude-fallback)' }]);
    expect(primary.received).toHaveLength(1);
  });

  it('a primary Envoy cannot connect to fails over to the next priority', async () => {
    const client = openAIClient(`${run.gatewayUrl}/v1`, tenant());
    const answer = await client.chat.completions.create({ model: 'refused-model', messages: HELLO });
    expect(answer.choices[0].message.content).toBe('Hello from openai (refused-model)');
    // It went to the primary first and failed over for the connection failure, not straight to the fallback.
    expect(await fallbackCount('azure', 'openai', 'connection_failure')).toBeGreaterThan(0);
  });

  it('a streaming request fails over before its first byte and streams the fallback answer', async () => {
    primary.next({ kind: 'error', status: 503, message: 'overloaded' });
    const client = openAIClient(`${run.gatewayUrl}/v1`, tenant());
    const stream = await client.chat.completions.create({ model: 'resilient-model', messages: HELLO, stream: true });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(text).toBe('Hello from anthropic (claude-fallback)');
    expect(chunks).toBeGreaterThan(1);
    expect(primary.received[0]).toMatchObject({ stream: true });
  });

  it('charges the budget once, with the answering attempt usage only', async () => {
    const headers = tenant();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      primary.next({ kind: 'error', status: 503, message: 'overloaded' });
      statuses.push(
        (await rawChat(`${run.gatewayUrl}/v1/chat/completions`, { model: 'resilient-model', messages: HELLO }, headers))
          .status,
      );
    }
    // Two answers of COST tokens use the budget up; had an answer been charged twice (the failed attempt and the
    // fallback), the second request would have been refused.
    expect(statuses).toEqual([200, 200, 429]);
    // The budget's own 429 never fails over: the third request reached no backend.
    expect(primary.received).toHaveLength(2);
    expect((await run.fakes.anthropic.records()).filter((r) => r.rejected === undefined)).toHaveLength(2);
    if (redisUrl) {
      const counters = await countersContaining(redisUrl, headers['x-tenant-id']);
      expect(counters.map((counter) => counter.value)).toEqual([2 * COST]);
    }
  });

  it('when every attempt fails, the client gets the last error in its own schema', async () => {
    primary.next({ kind: 'error', status: 503, message: 'primary is down' });
    secondary.next({ kind: 'error', status: 502, message: 'secondary is down too' });
    const openai = openAIClient(`${run.gatewayUrl}/v1`, tenant());
    const failure = (await openai.chat.completions
      .create({ model: 'doomed-model', messages: HELLO })
      .catch((e) => e)) as {
      status: number;
      message: string;
    };
    expect(failure.status).toBe(502);
    expect(failure.message).toMatch(/secondary is down too/);

    primary.next({ kind: 'error', status: 503, message: 'primary is down' });
    secondary.next({ kind: 'error', status: 503, message: 'secondary is down too' });
    const anthropic = anthropicClient(`${run.gatewayUrl}/anthropic`, tenant());
    const refused = (await anthropic.messages
      .create({ model: 'doomed-model', max_tokens: 64, messages: HELLO })
      .catch((e) => e)) as { status: number; error: { type: string; error: { message: string } } };
    expect(refused.status).toBe(503);
    expect(refused.error.type).toBe('error');
    expect(refused.error.error.message).toMatch(/secondary is down too/);
  });

  it('without a fallback on the rule, the first answer stands', async () => {
    primary.next({ kind: 'error', status: 503, message: 'overloaded' });
    const answer = await rawChat(
      `${run.gatewayUrl}/v1/chat/completions`,
      { model: 'fragile-model', messages: HELLO },
      tenant(),
    );
    expect(answer.status).toBe(503);
    expect(answer.text).toMatch(/overloaded/);
    expect((await run.fakes.anthropic.records()).length).toBe(0);
  });

  describe('reference translation case 22 (priority failover)', () => {
    const folder = sharedPath('fixtures/translation-cases/22-modelname-override-and-fallback-v1-chat-completions');
    const maybe = folder ? it : it.skip;
    maybe('re-translates the original request for the fallback, which echoes the client model', async () => {
      const meta = JSON.parse(fs.readFileSync(path.join(folder!, 'meta.json'), 'utf8')) as {
        path: string;
        expStatus: number;
        expResponseHeaders: Record<string, string>;
      };
      const request = JSON.parse(fs.readFileSync(path.join(folder!, 'client-request.json'), 'utf8')) as {
        model: string;
      };
      expect(request.model).toBe(CASE_22_MODEL);
      primary.next({ kind: 'error', status: 500, message: 'bad model' });
      secondary.next({ kind: 'case22', body: fs.readFileSync(path.join(folder!, 'upstream-response.json')) });
      const answer = await rawChat(`${run.gatewayUrl}${meta.path}`, request, tenant());
      expect(answer.status).toBe(meta.expStatus);
      for (const [name, value] of Object.entries(meta.expResponseHeaders)) expect(answer.headers.get(name)).toBe(value);
      const expected = JSON.parse(
        fs.readFileSync(path.join(folder!, 'client-response.expected.json'), 'utf8'),
      ) as unknown;
      expect(JSON.parse(answer.text)).toEqual(expected);
      // The primary got the overridden model; the fallback the client's own, translated from the original body.
      expect(primary.received.map((r) => r.model)).toEqual(['bad-model']);
      expect(secondary.received.map((r) => r.model)).toEqual([CASE_22_MODEL]);
    });
  });
});
