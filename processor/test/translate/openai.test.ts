import { findUsageObject, SseUsageScanner, usageFromOpenAI } from '../../src/translate/openai-usage';
import { openAIPassthrough } from '../../src/translate/openai';
import { MAX_FILTERED_LINE_BYTES, StreamUsageFilter } from '../../src/translate/stream-usage-filter';
import type { TranslationContext } from '../../src/translate/types';
import { openAIBackend } from '../support/processor-harness';

const usageEvent = (prompt: number, completion: number) =>
  `data: {"id":"x","choices":[],"usage":{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":` +
  `${prompt + completion},"prompt_tokens_details":{"cached_tokens":` +
  `1},"completion_tokens_details":{"reasoning_tokens":2}}}`;

describe('SseUsageScanner', () => {
  const stream = [
    'data: {"choices":[{"delta":{"content":"say \\"usage\\": {"}}],"usage":null}',
    '',
    usageEvent(5, 6),
    '',
    ': comment "usage":{',
    '',
    'data: {"broken":"usage":{',
    '',
    usageEvent(7, 8),
    '',
    'data: [DONE]',
    '',
    '',
  ];

  it.each([['\n'], ['\r\n'], ['\r']])('finds the latest usage at every split point (line ending %j)', (eol) => {
    const bytes = Buffer.from(stream.join(eol));
    for (let split = 1; split < bytes.length; split += 7) {
      const scanner = new SseUsageScanner();
      for (let i = 0; i < bytes.length; i += split) scanner.push(bytes.subarray(i, i + split));
      scanner.end();
      expect(scanner.usage).toEqual({ input: 7, output: 8, total: 15, cachedInput: 1, reasoning: 2 });
    }
  });

  it('finds the key after names that end in "usage", and the usage event after a null one in the same chunk', () => {
    const scanner = new SseUsageScanner();
    scanner.push(Buffer.from('data: {"nousage":{"a":1},"x_usage":null,"usage":null}\n\n' + usageEvent(2, 3) + '\n\n'));
    expect(scanner.usage).toEqual({ input: 2, output: 3, total: 5, cachedInput: 1, reasoning: 2 });
    const keyed = new SseUsageScanner();
    keyed.push(Buffer.from(`data: {"nousage":1,${usageEvent(4, 5).slice('data: {'.length)}\n\n`));
    expect(keyed.usage).toEqual({ input: 4, output: 5, total: 9, cachedInput: 1, reasoning: 2 });
  });

  it('reads a final event without its blank line at the end, and Responses API events', () => {
    const scanner = new SseUsageScanner();
    scanner.push(
      Buffer.from(
        'event: response.completed\ndata: ' +
          '{"type":"response.completed","response":{"usage":{"input_tokens":3,' +
          '"output_tokens":4,"total_tokens":7,"output_tokens_details":{"reasoning_tokens":1}}}}',
      ),
    );
    expect(scanner.usage).toBeUndefined();
    scanner.end();
    expect(scanner.usage).toEqual({ input: 3, output: 4, total: 7, cachedInput: 0, reasoning: 1 });
  });
});

describe('findUsageObject', () => {
  it('finds the top-level usage without a full parse, ignoring braces inside strings', () => {
    const body = Buffer.from(
      JSON.stringify({
        choices: [{ message: { content: 'a } { "b" \\ ' } }],
        usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
      }),
    );
    expect(findUsageObject(body)).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });

  it('returns null for "usage": null, undefined without usage or JSON', () => {
    expect(findUsageObject(Buffer.from('{"usage" : null}'))).toBeNull();
    expect(findUsageObject(Buffer.from('{"id":1}'))).toBeUndefined();
    expect(findUsageObject(Buffer.from('not json'))).toBeUndefined();
  });

  it('falls back to a full parse when the object is cut', () => {
    expect(findUsageObject(Buffer.from('{"usage":{"prompt_tokens":1'))).toBeUndefined();
  });

  it('reads what JSON.parse reads, whatever the usage object holds', () => {
    const usages: unknown[] = [
      {
        prompt_tokens: 352,
        completion_tokens: 72,
        total_tokens: 424,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: null },
        completion_tokens_details: { reasoning_tokens: 10 },
      },
      { input_tokens: 0, output_tokens: 9007199254740991, input_tokens_details: {}, output_tokens_details: null },
      {},
      { prompt_tokens: 1.5, completion_tokens: 1e3, total_tokens: -4 },
      // A count past 2^53 on purpose: JSON numbers that large arrive rounded.
      // eslint-disable-next-line no-loss-of-precision
      { prompt_tokens: 12345678901234567890, completion_tokens: 2 },
      { prompt_tokens: '7', completion_tokens: [1], total_tokens: true },
      { 'prompt_"tokens': 3, prompt_tokens: 4 },
      { prompt_tokens_details: { nested: { deeper: 1 } }, prompt_tokens: 5 },
      { ünïcode: 1, prompt_tokens: 6 },
      { note: 'a } b { "quoted" \\ end', prompt_tokens: 7, nested: { text: '}}' } },
    ];
    const spacings: Array<(json: string) => string> = [
      (json) => json,
      (json) => json.replace(/([{,:])/g, '$1 ').replace(/}/g, ' }'),
      (json) => json.replace(/([{,])/g, '$1\n  ').replace(/:/g, ' :\t'),
    ];
    for (const usage of usages) {
      // The spacings rewrite every brace, comma and colon: only for usages without string values.
      for (const space of JSON.stringify(usage).includes(':"') ? spacings.slice(0, 1) : spacings) {
        const body = Buffer.from(
          `{"id":"x","choices":[{"message":{"content":"\\"usage\\": {}"}}],"usage": ` +
            `${space(JSON.stringify(usage))},"service_tier":"default"}`,
        );
        expect(findUsageObject(body)).toEqual((JSON.parse(body.toString()) as { usage: unknown }).usage);
      }
    }
  });
});

describe('usageFromOpenAI', () => {
  it('computes a missing total and ignores negative or non-numeric counts', () => {
    expect(usageFromOpenAI({ prompt_tokens: 2, completion_tokens: 3 })).toEqual({
      input: 2,
      output: 3,
      total: 5,
      cachedInput: 0,
      reasoning: 0,
    });
    expect(usageFromOpenAI({ prompt_tokens: -1, completion_tokens: 'x', total_tokens: 4 })).toEqual({
      input: 0,
      output: 0,
      total: 4,
      cachedInput: 0,
      reasoning: 0,
    });
    expect(usageFromOpenAI(null)).toBeUndefined();
  });

  // The shapes of the openai package's types (Transcription.Tokens/Duration, ImagesResponse.Usage).
  it('reads token-billed transcription usage: input counts audio and text tokens', () => {
    const usage = {
      type: 'tokens',
      input_tokens: 14,
      input_token_details: { audio_tokens: 11, text_tokens: 3 },
      output_tokens: 9,
      total_tokens: 23,
    };
    expect(usageFromOpenAI(usage)).toEqual({ input: 14, output: 9, total: 23, cachedInput: 0, reasoning: 0 });
  });

  it('charges nothing for duration-billed transcription (whisper-1): no tokens are invented', () => {
    expect(usageFromOpenAI({ type: 'duration', seconds: 7 })).toBeUndefined();
  });

  it('reads GPT image usage: input counts text and image tokens', () => {
    const usage = {
      input_tokens: 50,
      input_tokens_details: { text_tokens: 40, image_tokens: 10 },
      output_tokens: 272,
      output_tokens_details: { text_tokens: 0, image_tokens: 272 },
      total_tokens: 322,
    };
    expect(usageFromOpenAI(usage)).toEqual({ input: 50, output: 272, total: 322, cachedInput: 0, reasoning: 0 });
  });
});

describe('media answers through openAIPassthrough (operation other)', () => {
  const context: TranslationContext = {
    api: 'OpenAI',
    operation: 'other',
    subpath: '/audio/transcriptions',
    query: '',
    requestModel: 'gpt-4o-transcribe',
    upstreamModel: 'gpt-4o-transcribe',
    backend: openAIBackend('b'),
    stream: true,
    forceStreamUsage: true,
    requestId: 'r',
    nowSeconds: 0,
  };

  it('forwards a form unchanged to the backend path, asking nothing of the body', () => {
    expect(openAIPassthrough(context).forwardForm!()).toEqual({
      path: '/v1/audio/transcriptions',
      body: undefined,
      setHeaders: {},
      removeHeaders: [],
    });
  });

  it('counts transcript.text.done usage of a streamed transcription, passing the events unchanged', () => {
    const response = openAIPassthrough(context).response();
    expect(response.head(200, { 'content-type': 'text/event-stream' }).stream).toBe(true);
    const done =
      'data: {"type":"transcript.text.done","text":"Hi","usage":{"type":"tokens","input_tokens":14,' +
      '"input_token_details":{"audio_tokens":11,"text_tokens":3},"output_tokens":9,"total_tokens":23}}\n\n';
    const delta = Buffer.from('data: {"type":"transcript.text.delta","delta":"Hi"}\n\n');
    expect(response.body(delta, false)).toBe(delta);
    expect(response.body(Buffer.from(done), true).toString()).toBe(done);
    expect(response.usage).toEqual({ input: 14, output: 9, total: 23, cachedInput: 0, reasoning: 0 });
  });

  it('counts image_generation.completed usage of a streamed generation', () => {
    const response = openAIPassthrough({ ...context, subpath: '/images/generations' }).response();
    response.head(200, { 'content-type': 'text/event-stream' });
    response.body(
      Buffer.from(
        'event: image_generation.completed\ndata: {"type":"image_generation.completed","b64_json":"AAAA",' +
          '"usage":{"input_tokens":50,"input_tokens_details":{"text_tokens":40,"image_tokens":10},' +
          '"output_tokens":272,"total_tokens":322}}\n\n',
      ),
      true,
    );
    expect(response.usage).toMatchObject({ input: 50, output: 272, total: 322 });
  });

  it('passes a plain-text transcription (response_format text) through, uncounted', () => {
    const response = openAIPassthrough({ ...context, stream: false }).response();
    expect(response.head(200, { 'content-type': 'text/plain; charset=utf-8' })).toMatchObject({ stream: false });
    const text = Buffer.from('Hello there.\n');
    expect(response.body(text, true)).toBe(text);
    expect(response.replacedStatus).toBeUndefined();
    expect(response.usage).toMatchObject({ input: 0, output: 0, total: 0 });
  });
});

describe('openAIPassthrough', () => {
  const context = (overrides: Partial<TranslationContext>): TranslationContext => ({
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '?a=b',
    requestModel: 'gpt-4o',
    upstreamModel: 'gpt-4o',
    backend: openAIBackend('b', { schema: { name: 'OpenAI', pathPrefix: '/openai/v1' } }),
    stream: false,
    forceStreamUsage: false,
    requestId: 'r',
    nowSeconds: 0,
    ...overrides,
  });

  it('moves the path under the backend prefix and leaves the body alone when nothing changes', () => {
    const body = { model: 'gpt-4o', messages: [] };
    const upstream = openAIPassthrough(context({})).request(body);
    expect(upstream).toMatchObject({ path: '/openai/v1/chat/completions?a=b', bodyUnchanged: true });
    expect(upstream.body).toBe(body);
    const root = openAIPassthrough(
      context({ backend: openAIBackend('b', { schema: { name: 'OpenAI', pathPrefix: '/' } }) }),
    ).request({ model: 'gpt-4o' });
    expect(root.path).toBe('/chat/completions?a=b');
  });

  it('overrides the model and forces stream usage (keeping other stream options)', () => {
    const upstream = openAIPassthrough(
      context({ upstreamModel: 'other', stream: true, forceStreamUsage: true }),
    ).request({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_obfuscation: false },
    });
    expect(upstream.bodyUnchanged).toBe(false);
    expect(upstream.body).toEqual({
      model: 'other',
      stream: true,
      stream_options: { include_obfuscation: false, include_usage: true },
    });
  });

  it('does not force usage on embeddings or non-streaming requests', () => {
    expect(
      openAIPassthrough(context({ operation: 'embeddings', stream: true, forceStreamUsage: true })).request({
        model: 'gpt-4o',
      }).bodyUnchanged,
    ).toBe(true);
    expect(openAIPassthrough(context({ forceStreamUsage: true })).request({ model: 'gpt-4o' }).bodyUnchanged).toBe(
      true,
    );
  });

  it.each([
    ['nothing to change', {}, true],
    ['a stream without forced usage', { stream: true }, true],
    ['forced usage on embeddings', { operation: 'embeddings', stream: true, forceStreamUsage: true }, true],
    ['forced usage on a non-streaming request', { forceStreamUsage: true }, true],
    ['a model override', { upstreamModel: 'other' }, false],
    ['forced usage on a chat stream', { stream: true, forceStreamUsage: true }, false],
    [
      'forced usage on a completions stream',
      { operation: 'completions', subpath: '/completions', stream: true, forceStreamUsage: true },
      false,
    ],
  ] as Array<[string, Partial<TranslationContext>, boolean]>)(
    'forwards the client body unchanged only when nothing changes it: %s',
    (_name, overrides, unchanged) => {
      const full = openAIPassthrough(context(overrides)).request({
        model: 'gpt-4o',
        stream: overrides.stream === true,
        messages: [],
      });
      expect(full.bodyUnchanged).toBe(unchanged);
    },
  );
});

describe('StreamUsageFilter (usage the client did not ask for)', () => {
  const chunk = (content: string) =>
    `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":${JSON.stringify(
      content,
    )}}}],"usage":null}`;
  const withoutUsage = (content: string) =>
    `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":${JSON.stringify(
      content,
    )}}}]}`;

  function run(text: string, split: number): { out: string; usage: unknown } {
    const filter = new StreamUsageFilter();
    const bytes = Buffer.from(text);
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += split)
      out.push(filter.push(bytes.subarray(i, i + split), i + split >= bytes.length));
    return { out: Buffer.concat(out).toString(), usage: filter.usage };
  }

  it.each([['\n'], ['\r\n'], ['\r']])(
    'drops the usage chunk and every "usage" member at every split point (line ending %j)',
    (eol) => {
      const stream = [
        chunk('say "usage":{'),
        '',
        // Another serialization: the member first, so the filter parses the chunk.
        'data: {"usage":null,"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
        '',
        usageEvent(7, 8),
        '',
        'data: [DONE]',
        '',
        '',
      ].join(eol);
      const expected = [
        withoutUsage('say "usage":{'),
        '',
        'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
        '',
        'data: [DONE]',
        '',
        '',
      ].join(eol);
      for (const split of [1, 2, 5, 13, 64, stream.length]) {
        const { out, usage } = run(stream, split);
        expect(out).toBe(expected);
        expect(usage).toEqual({ input: 7, output: 8, total: 15, cachedInput: 1, reasoning: 2 });
      }
    },
  );

  it('keeps a chunk that carries usage and choices, without the usage; passes other events unchanged', () => {
    const stream =
      'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}}\n\n' +
      ': a comment with "usage"\n\n' +
      'data: {"choices":[],"prompt_filter_results":[]}\n\n' +
      'data: {"broken":"usage":{\n\n' +
      'data: [DONE]\n\n';
    const { out, usage } = run(stream, 7);
    expect(out).toBe(
      'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n' +
        ': a comment with "usage"\n\n' +
        'data: {"choices":[],"prompt_filter_results":[]}\n\n' +
        'data: {"broken":"usage":{\n\n' +
        'data: [DONE]\n\n',
    );
    expect(usage).toEqual({ input: 2, output: 1, total: 3, cachedInput: 0, reasoning: 0 });
  });

  it('passes a line longer than the bound through unfiltered, then filters again', () => {
    const long = `data: {"choices":[{"index":0,"delta":{"content":"${'a'.repeat(MAX_FILTERED_LINE_BYTES)}"}}]}\n\n`;
    const { out, usage } = run(long + usageEvent(1, 1) + '\n\ndata: [DONE]\n\n', 64 * 1024);
    expect(out).toBe(long + 'data: [DONE]\n\n');
    expect(usage).toMatchObject({ input: 1, output: 1 });
  });
});

describe('openAIPassthrough response: forced stream usage', () => {
  const base: TranslationContext = {
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '',
    requestModel: 'gpt-4o',
    upstreamModel: 'gpt-4o',
    backend: openAIBackend('b'),
    stream: true,
    forceStreamUsage: true,
    streamUsageRequested: false,
    requestId: 'r',
    nowSeconds: 0,
  };
  const upstream =
    'data: {"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}\n\n' + usageEvent(3, 4) + '\n\n';

  function respond(context: TranslationContext, body: Record<string, unknown>) {
    const translator = openAIPassthrough(context);
    translator.request(body);
    const response = translator.response();
    const head = response.head(200, { 'content-type': 'text/event-stream' });
    const out = response.body(Buffer.from(upstream), true).toString();
    return { head, out, response };
  }

  it('reads the usage but keeps it from a client that did not ask', () => {
    const { out, response } = respond(base, { model: 'gpt-4o', stream: true });
    expect(response.passthroughBody).toBe(false);
    expect(out).toBe('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n');
    expect(response.usage).toMatchObject({ input: 3, output: 4, total: 7 });
  });

  it.each([
    ['the gateway read the ask', { ...base, streamUsageRequested: true }],
    ['only the parsed body shows the ask (escaped key)', base],
  ])('passes everything to a client that asked: %s', (_name, context) => {
    const { out, response } = respond(context, {
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.passthroughBody).toBe(true);
    expect(out).toBe(upstream);
    expect(response.usage).toMatchObject({ input: 3, output: 4, total: 7 });
  });

  it('passes the stream unchanged when usage was not forced', () => {
    const { out, response } = respond({ ...base, forceStreamUsage: false }, { model: 'gpt-4o', stream: true });
    expect(response.passthroughBody).toBe(true);
    expect(out).toBe(upstream);
  });
});
