import { TranslationError } from '../../src/translate/types';
import { openAIChatToAnthropic } from '../../src/providers/openai-to-anthropic';
import { openAIChatToConverse } from '../../src/providers/bedrock';
import { openAIChatToGemini } from '../../src/providers/gemini';
import {
  emptyAssistant,
  forEachChatMessage,
  imageUrlOf,
  readChatMessages,
  readChatTools,
  readStop,
  readToolChoice,
  requiredToolCallId,
  type ChatAssistantTurn,
  type ChatImagePart,
  type ChatToolTurn,
} from '../../src/providers/openai-chat-reader';

function thrown(fn: () => unknown): TranslationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TranslationError) return error;
    throw error;
  }
  throw new Error('expected a TranslationError');
}

describe('readChatMessages', () => {
  const messages = [
    { role: 'system', content: 'sys', cache_control: { type: 'ephemeral', ttl: '1h' } },
    { role: 'developer', content: [{ type: 'text', text: 'dev' }] },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'look', cache_control: { type: 'ephemeral' } },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAA' } },
        { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE' } },
        { type: 'input_audio', input_audio: { data: 'UklG', format: 'mp3' } },
        { type: 'video', video: {} },
      ],
    },
    {
      role: 'assistant',
      content: '',
      reasoning_content: 'hm',
      reasoning_signature: 'sig',
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
    },
    { role: 'tool', tool_call_id: 'c1', content: [{ type: 'refusal', refusal: 'no' }] },
  ];

  it('splits system messages from the turns and types every part', () => {
    const view = readChatMessages(messages, { cacheMarkers: true });
    expect(view.system).toEqual([
      {
        role: 'system',
        index: 0,
        param: 'messages[0].content',
        cache: { type: 'ephemeral', ttl: '1h' },
        content: 'sys',
      },
      {
        role: 'system',
        index: 1,
        param: 'messages[1].content',
        cache: undefined,
        content: [{ type: 'text', text: 'dev', param: 'messages[1].content[0]' }],
      },
    ]);
    expect(view.turns.map((t) => t.role)).toEqual(['user', 'assistant', 'tool']);
    expect(view.turns[0].content).toEqual([
      { type: 'text', text: 'look', param: 'messages[2].content[0]', cache: { type: 'ephemeral' } },
      { type: 'image_url', url: 'data:image/png;base64,AAA', param: 'messages[2].content[1]' },
      {
        type: 'file',
        data: { mediaType: 'application/pdf', data: 'JVBE' },
        param: 'messages[2].content[2]',
      },
      { type: 'input_audio', data: 'UklG', format: 'mp3', param: 'messages[2].content[3]' },
      { type: 'other', rawType: 'video', param: 'messages[2].content[4]' },
    ]);
    const assistant = view.turns[1] as ChatAssistantTurn;
    expect(assistant.content).toBeUndefined();
    expect(assistant.reasoning).toEqual({ text: 'hm', signature: 'sig' });
    expect(assistant.toolCalls).toEqual([{ id: 'c1', name: 'f', arguments: { a: 1 } }]);
    const tool = view.turns[2] as ChatToolTurn;
    expect(requiredToolCallId(tool)).toBe('c1');
    expect(tool.content).toEqual([{ type: 'refusal', text: 'no', param: 'messages[4].content[0]' }]);
  });

  it('reads no cache markers (nor checks them) when not asked', () => {
    const view = readChatMessages(
      [{ role: 'user', content: [{ type: 'text', text: 'x', cache_control: 'bogus' }], cache_control: 1 }],
      { cacheMarkers: false },
    );
    expect(view.turns[0].cache).toBeUndefined();
    expect(view.turns[0].content).toEqual([{ type: 'text', text: 'x', param: 'messages[0].content[0]' }]);
  });

  it.each([
    ['not an array', {}, 400, 'messages', 'messages must be an array'],
    ['a non-object message', [1], 400, 'messages[0]', 'messages[0] must be an object'],
    ['an unknown role', [{ role: 'bot', content: 'x' }], 400, 'messages[0].role', 'is not supported'],
    [
      'content that is neither string nor parts',
      [{ role: 'user', content: 5 }],
      400,
      'messages[0].content',
      'must be a string or an array of content parts',
    ],
    [
      'a malformed tool call',
      [{ role: 'assistant', tool_calls: [{ function: {} }] }],
      400,
      'messages[0].tool_calls',
      'messages[0].tool_calls[0] must be a function call',
    ],
    [
      'tool call arguments that are not JSON',
      [{ role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{' } }] }],
      400,
      'messages[0].tool_calls[0].function.arguments',
      'is not valid JSON',
    ],
    [
      'a malformed part cache_control',
      [{ role: 'user', content: [{ type: 'text', text: 'x', cache_control: { type: 'persistent' } }] }],
      400,
      'messages[0].content[0].cache_control',
      'cache_control must be',
    ],
  ])('answers %s with 400 naming the path', (_name, value, status, param, message) => {
    const error = thrown(() => readChatMessages(value, { cacheMarkers: true }));
    expect(error.status).toBe(status);
    expect(error.param).toBe(param);
    expect(error.message).toContain(message);
  });

  it('leaves per-backend checks to helpers with the same errors', () => {
    const view = readChatMessages(
      [
        { role: 'assistant', content: null },
        { role: 'tool', content: 'r' },
        { role: 'user', content: [{ type: 'image_url', image_url: {} }] },
      ],
      { cacheMarkers: true },
    );
    expect(emptyAssistant(view.turns[0] as ChatAssistantTurn).message).toBe(
      'messages[0] (assistant) has neither content nor tool_calls',
    );
    expect(thrown(() => requiredToolCallId(view.turns[1] as ChatToolTurn)).param).toBe('messages[1].tool_call_id');
    const image = (view.turns[2].content as ChatImagePart[])[0];
    expect(thrown(() => imageUrlOf(image)).message).toBe('messages[2].content[0].image_url.url must be a string');
  });
});

describe('readChatTools, readToolChoice, readStop', () => {
  it('reads function tools with their schema, strictness and cache marker', () => {
    const tools = [
      { type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' }, strict: true } },
      { type: 'function', function: { name: 'g', cache_control: { type: 'ephemeral', ttl: '5m' } } },
    ];
    expect(readChatTools(tools, 'X', { cacheMarkers: true })).toEqual([
      { name: 'f', description: 'd', parameters: { type: 'object' }, strict: true, cache: undefined },
      {
        name: 'g',
        description: undefined,
        parameters: undefined,
        strict: false,
        cache: { type: 'ephemeral', ttl: '5m' },
      },
    ]);
    expect(readChatTools(tools, 'X', { cacheMarkers: false })?.[1].cache).toBeUndefined();
    expect(readChatTools(null, 'X', { cacheMarkers: true })).toBeUndefined();
  });

  it('answers what is not a list of function tools', () => {
    expect(thrown(() => readChatTools({}, 'X', { cacheMarkers: true })).message).toBe('tools must be an array');
    const error = thrown(() => readChatTools([{ type: 'web_search' }], 'Backend', { cacheMarkers: true }));
    expect([error.status, error.param, error.message]).toEqual([
      422,
      'tools[0]',
      'parameter "tools[0]" is not supported by the Backend backend: only function tools',
    ]);
  });

  it('reads tool_choice modes and the named function', () => {
    expect(['auto', 'required', 'none', undefined, null].map(readToolChoice)).toEqual([
      'auto',
      'required',
      'none',
      undefined,
      undefined,
    ]);
    expect(readToolChoice({ type: 'function', function: { name: 'f' } })).toEqual({ name: 'f' });
    expect(thrown(() => readToolChoice('any')).param).toBe('tool_choice');
  });

  it('reads stop as a list, none when empty', () => {
    expect(readStop('x')).toEqual(['x']);
    expect(readStop(['a', 'b'])).toEqual(['a', 'b']);
    expect(readStop([])).toBeUndefined();
    expect(readStop(null)).toBeUndefined();
    expect(thrown(() => readStop([1])).message).toBe('stop must be a string or an array of strings');
  });
});

describe('forEachChatMessage', () => {
  it('hands each message over before reading the next, so the first fault is answered', () => {
    const seen: number[] = [];
    const messages = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
      { role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{' } }] },
    ];
    const error = thrown(() =>
      forEachChatMessage(messages, { cacheMarkers: false }, (message) => {
        seen.push(message.index);
        if (message.index === 1) throw new TranslationError(422, 'refused by the visitor');
      }),
    );
    expect(error.message).toBe('refused by the visitor');
    expect(seen).toEqual([0, 1]);
  });

  it.each([
    ['Anthropic', (body: Record<string, unknown>) => openAIChatToAnthropic(body)],
    ['Bedrock', (body: Record<string, unknown>) => openAIChatToConverse(body)],
    ['Gemini', (body: Record<string, unknown>) => openAIChatToGemini(body)],
  ])("%s answers a part it does not take before a later message's malformed tool call", (_name, translate) => {
    const error = thrown(() =>
      translate({
        model: 'm',
        messages: [
          { role: 'system', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }] },
          { role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{' } }] },
        ],
      }),
    );
    expect([error.status, error.param]).toEqual([422, 'messages[0].content[0]']);
  });
});
