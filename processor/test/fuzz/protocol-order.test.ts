/**
 * Protocol-order violations: a response before the request, a body before its headers, duplicate header messages,
 * bodies and trailers in every order (seeded), and buffered bodies followed by trailers (end_of_stream=false on the
 * body, then trailers: how Envoy sends a buffered body that has trailers).
 *
 * Invariant: every message gets exactly one answer, of its own kind (or an immediate response that ends the
 * stream), in order, within a deadline; nothing is left waiting. A buffered response body followed by trailers is
 * charged the tokens it carries.
 */
import { Findings } from '../support/fuzz-checks';
import { FUZZ_SECRETS, fuzzConfig } from '../support/fuzz-config';
import { fuzzIt, scaled, type Rng } from '../support/fuzz';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { messages, SessionProbe, type Answer } from '../support/session-driver';
import type { ProcessingRequest } from '../../src/grpc/messages';
import type { RawStream } from '../support/envoy-client';

const DEADLINE_MS = 2000;
const BODY = JSON.stringify({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] });
const USAGE = '{"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}';
const REQUEST_HEADERS = {
  ':method': 'POST',
  ':path': '/v1/chat/completions',
  ':authority': 'gw',
  'content-type': 'application/json',
  'content-length': String(BODY.length),
};

let processor: TestProcessor;
beforeAll(async () => {
  processor = await startTestProcessor(fuzzConfig(), { secrets: FUZZ_SECRETS });
});
afterAll(() => processor.close());

/** The answer kind a message must get (besides an immediate response). */
function answerKind(message: ProcessingRequest): string {
  return message.request!;
}

/**
 * Sends `sequence` (answers awaited message by message, except a body with end_of_stream=false, whose answer may
 * wait for the trailers that follow it) and checks one answer per message, in order, of the right kind.
 */
async function play(sequence: ProcessingRequest[]): Promise<string[]> {
  const probe = new SessionProbe(processor.app.processor);
  const problems: string[] = [];
  const expected: string[] = [];
  const got: Answer[] = [];
  try {
    for (let i = 0; i < sequence.length; i++) {
      const message = sequence[i];
      probe.send(message);
      expected.push(answerKind(message));
      const deferrable =
        (message.requestBody?.endOfStream === false || message.responseBody?.endOfStream === false) &&
        i + 1 < sequence.length;
      if (deferrable) {
        await probe.settle(1);
        continue;
      }
      while (got.length < expected.length) {
        const answer = await probe.next(
          `answer ${got.length + 1} (to ${expected[got.length]}) after [${sequence
            .slice(0, i + 1)
            .map((m) => m.request)
            .join(', ')}]`,
          DEADLINE_MS,
        );
        got.push(answer);
        if (answer.kind === 'immediateResponse') return problems;
      }
    }
    for (let i = 0; i < expected.length; i++) {
      if (got[i].kind !== expected[i]) problems.push(`answer ${i + 1} is ${got[i].kind}, expected ${expected[i]}`);
    }
    return problems;
  } catch (error) {
    return [(error as Error).message];
  } finally {
    await probe.settle(2);
    if (probe.unread > 0) problems.push(`${probe.unread} answer(s) more than messages`);
    probe.close(false);
  }
}

const requestHeaders = (): ProcessingRequest => messages.requestHeaders(REQUEST_HEADERS);
const requestBody = (end = true): ProcessingRequest => messages.requestBody(BODY, end);
const responseHeaders = (): ProcessingRequest =>
  messages.responseHeaders({ ':status': '200', 'content-type': 'application/json' });
const responseBody = (end = true): ProcessingRequest => messages.responseBody(USAGE, end);

describe('protocol-order violations', () => {
  it.each<[string, () => ProcessingRequest[]]>([
    ['response headers before any request', () => [responseHeaders(), responseBody()]],
    ['a response body as the first message', () => [responseBody()]],
    ['a request body before its headers', () => [requestBody(), requestHeaders(), requestBody()]],
    ['request headers twice', () => [requestHeaders(), requestHeaders(), requestBody()]],
    [
      'response headers twice',
      () => [requestHeaders(), requestBody(), responseHeaders(), responseHeaders(), responseBody()],
    ],
    [
      'a request body after the response started',
      () => [requestHeaders(), requestBody(), responseHeaders(), requestBody(), responseBody()],
    ],
    [
      'trailers without bodies',
      () => [requestHeaders(), messages.requestTrailers(), responseHeaders(), messages.responseTrailers()],
    ],
    [
      'a request body with end_of_stream=false, then trailers (buffered mode with trailers)',
      () => [requestHeaders(), requestBody(false), messages.requestTrailers()],
    ],
    [
      'a response body with end_of_stream=false, then trailers (buffered mode with trailers)',
      () => [requestHeaders(), requestBody(), responseHeaders(), responseBody(false), messages.responseTrailers()],
    ],
  ])('%s: every message answered, in order, within the deadline', async (_, sequence) => {
    expect(await play(sequence())).toEqual([]);
  });

  it('a buffered response body followed by trailers is charged the tokens it carries', async () => {
    const probe = new SessionProbe(processor.app.processor);
    try {
      for (const message of [requestHeaders(), requestBody(), responseHeaders()]) {
        probe.send(message);
        await probe.next(String(message.request), DEADLINE_MS);
      }
      probe.send(responseBody(false));
      probe.send(messages.responseTrailers());
      const bodyAnswer = await probe.next('the response body followed by trailers', DEADLINE_MS);
      expect(bodyAnswer.kind).toBe('responseBody');
      const trailersAnswer = await probe.next('the response trailers', DEADLINE_MS);
      expect(trailersAnswer.kind).toBe('responseTrailers');
      const metadata = {
        ...bodyAnswer.metadata?.['io.envoy.ai_gateway'],
        ...trailersAnswer.metadata?.['io.envoy.ai_gateway'],
      };
      expect(metadata).toMatchObject({ llm_input_token: 3, llm_output_token: 5, llm_total_token: 8 });
    } finally {
      probe.close(false);
    }
  });

  function randomMessage(rng: Rng): ProcessingRequest {
    switch (rng.int(8)) {
      case 0:
        return requestHeaders();
      case 1:
        return requestBody(true);
      case 2:
        return messages.requestTrailers();
      case 3:
        return responseHeaders();
      case 4:
        return responseBody(true);
      case 5:
        return messages.responseTrailers();
      case 6:
        return messages.responseHeaders({
          ':status': String(rng.pick([200, 404, 500, 0])),
          'content-type': rng.pick(['text/event-stream', 'application/json', 'application/vnd.amazon.eventstream']),
        });
      default:
        return messages.responseBody(
          rng.pick(['data: {"x":1}\n\n', '', USAGE, '\u0000\u0000\u0000\u0010']),
          rng.bool(),
        );
    }
  }

  fuzzIt(
    'random sequences of messages (seeded): every message answered, in order, within the deadline',
    async (rng) => {
      const findings = new Findings();
      for (let i = scaled(400); i > 0; i--) {
        if (findings.exhausted) break;
        const sequence = Array.from({ length: rng.range(1, 8) }, () => randomMessage(rng));
        // Some sequences start like a real exchange, so the later violations hit a routed session.
        if (rng.bool(0.5)) sequence.unshift(requestHeaders(), requestBody());
        await findings.check(
          () =>
            sequence.map((m) => `${m.request}${m.responseBody?.endOfStream === false ? '(eos=false)' : ''}`).join(', '),
          () => play(sequence),
        );
      }
      findings.assertNone('random message orders');
    },
    30_000,
  );
});

describe('protocol-order violations over gRPC', () => {
  async function next(stream: RawStream, what: string): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        stream.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${what}: no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
        }),
      ]);
      return answer.kind;
    } finally {
      clearTimeout(timer);
    }
  }

  it('buffered bodies followed by trailers, on both sides, are answered over a real stream', async () => {
    const stream = processor.client.openStream();
    try {
      const kinds: string[] = [];
      stream.send(requestHeaders());
      kinds.push(await next(stream, 'request headers'));
      stream.send(requestBody(false));
      stream.send(messages.requestTrailers());
      kinds.push(await next(stream, 'request body (end_of_stream=false) then trailers'));
      kinds.push(await next(stream, 'request trailers'));
      stream.send(responseHeaders());
      kinds.push(await next(stream, 'response headers'));
      stream.send(responseBody(false));
      stream.send(messages.responseTrailers());
      kinds.push(await next(stream, 'response body (end_of_stream=false) then trailers'));
      kinds.push(await next(stream, 'response trailers'));
      expect(kinds).toEqual([
        'requestHeaders',
        'requestBody',
        'requestTrailers',
        'responseHeaders',
        'responseBody',
        'responseTrailers',
      ]);
    } finally {
      stream.end();
    }
  });

  it('a response before the request over a real stream: answered', async () => {
    const stream = processor.client.openStream();
    try {
      stream.send(responseHeaders());
      expect(['responseHeaders', 'immediateResponse']).toContain(await next(stream, 'response headers first'));
    } finally {
      stream.end();
    }
  });
});
