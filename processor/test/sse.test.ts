import { encodeSseEvent, SseEvent, SseParser } from '../src/sse';

function parseInChunks(text: string, sizes: (i: number) => number): SseEvent[] {
  const bytes = Buffer.from(text, 'utf8');
  const parser = new SseParser();
  const events: SseEvent[] = [];
  for (let i = 0, n = 0; i < bytes.length; n++) {
    const size = Math.max(1, sizes(n));
    events.push(...parser.push(bytes.subarray(i, i + size)));
    i += size;
  }
  events.push(...parser.end());
  return events;
}

describe('SseParser', () => {
  const stream =
    'event: message_start\ndata: {"a":1}\n\n: keep-alive comment\n\ndata: line one\r\ndata: ' +
    'line two\r\n\r\ndata:{"emoji":"héllo 👋"}\rid: 7\r\r';
  const expected: SseEvent[] = [
    { event: 'message_start', data: '{"a":1}' },
    { data: 'line one\nline two' },
    { data: '{"emoji":"héllo 👋"}', id: '7' },
  ];

  it('parses a whole stream', () => {
    expect(parseInChunks(stream, () => 1 << 20)).toEqual(expected);
  });

  it('gives the same events for every chunking, down to one byte at a time', () => {
    expect(parseInChunks(stream, () => 1)).toEqual(expected);
    for (let seed = 1; seed < 50; seed++) {
      let state = seed;
      const random = () => {
        state = (state * 1103515245 + 12345) & 0x7fffffff;
        return (state % 7) + 1;
      };
      expect(parseInChunks(stream, random)).toEqual(expected);
    }
  });

  it('drops a leading BOM only, decodes invalid UTF-8 as a whole-stream TextDecoder does, for every chunking', () => {
    const bytes = Buffer.concat([
      Buffer.from('\ufeffdata: first\n\n'),
      Buffer.from('data: bad '),
      Buffer.from([0xc3, 0x28, 0xe2, 0x82, 0x0a, 0x0a]),
      Buffer.from('data: \ufeffkept é\n\n'),
    ]);
    const expected = [
      { data: 'first' },
      { data: `bad ${new TextDecoder().decode(Buffer.from([0xc3, 0x28, 0xe2, 0x82]))}` },
      { data: '\ufeffkept é' },
    ];
    for (let size = 1; size <= bytes.length; size++) {
      const parser = new SseParser();
      const events: SseEvent[] = [];
      for (let i = 0; i < bytes.length; i += size) events.push(...parser.push(bytes.subarray(i, i + size)));
      events.push(...parser.end());
      expect(events).toEqual(expected);
    }
  });

  it('delivers a final event that lacks its blank line at end of stream', () => {
    expect(parseInChunks('data: [DONE]', () => 3)).toEqual([{ data: '[DONE]' }]);
  });

  it('round-trips through encodeSseEvent', () => {
    const text = expected.map(encodeSseEvent).join('');
    expect(parseInChunks(text, () => 5)).toEqual(expected);
  });
});
