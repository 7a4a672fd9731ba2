import * as fs from 'node:fs';
import {
  crc32,
  crc32Table,
  decodeEventStreamMessage,
  encodeEventStreamMessage,
  EventStreamDecoder,
  EventStreamError,
  EventStreamMessage,
} from '../../src/eventstream';
import * as path from 'node:path';
import { describeWithShared } from '../support/shared';

function decodeInChunks(bytes: Buffer, size: (n: number) => number): EventStreamMessage[] {
  const decoder = new EventStreamDecoder();
  const out: EventStreamMessage[] = [];
  for (let i = 0, n = 0; i < bytes.length; n++) {
    const step = Math.max(1, size(n));
    // Copy each chunk so a decoder that keeps views into earlier chunks would be caught by reuse below.
    const chunk = Buffer.from(bytes.subarray(i, i + step));
    for (const m of decoder.push(chunk)) out.push({ headers: m.headers, payload: Buffer.from(m.payload) });
    chunk.fill(0);
    i += step;
  }
  decoder.end();
  return out;
}

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('crc32', () => {
  it('matches the IEEE check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('table and native agree on ranges', () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
    expect(crc32Table(data, 17, 900)).toBe(crc32(data, 17, 900));
    expect(crc32Table(data, 5, 5)).toBe(0);
  });
});

describe('encode/decode round trip', () => {
  const headers = {
    ':event-type': 'chunk',
    flagTrue: true,
    flagFalse: false,
    tiny: { int8: -5 },
    small: { int16: 1234 },
    int: -70000,
    long: 1n << 40n,
    bytes: Buffer.from([1, 2, 3]),
    when: new Date(1731679200123),
    id: { uuid: '0123abcd-4567-89ef-0123-456789abcdef' },
  };

  it('decodes every header type', () => {
    const frame = encodeEventStreamMessage(headers, Buffer.from('{"x":1}'));
    const message = decodeEventStreamMessage(frame);
    expect(message.payload.toString()).toBe('{"x":1}');
    expect(message.headers).toEqual({ ...headers, tiny: -5, small: 1234 });
  });

  it('shares decoded header sections within a stream only when they hold immutable values', () => {
    const plain = encodeEventStreamMessage({ ':event-type': 'same', flag: true, n: 5 }, Buffer.from('a'));
    const withBytes = encodeEventStreamMessage({ ':event-type': 'same', blob: Buffer.from([1, 2]) }, Buffer.from('a'));
    // Same length, different bytes: must not be confused with the cached section.
    const similar = encodeEventStreamMessage({ ':event-type': 'sane', flag: true, n: 5 }, Buffer.from('a'));
    const decoder = new EventStreamDecoder();
    const [first, second, a, b, other] = decoder
      .push(Buffer.concat([plain, plain, withBytes, withBytes, similar]))
      .map((m) => m.headers);
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    (a.blob as Buffer)[0] = 99;
    expect(b.blob).toEqual(Buffer.from([1, 2]));
    expect(other[':event-type']).toBe('sane');
    // Another stream has its own cache: nothing decoded here is shared across streams.
    const [elsewhere] = new EventStreamDecoder().push(plain).map((m) => m.headers);
    expect(elsewhere).toEqual(first);
    expect(elsewhere).not.toBe(first);
  });

  it('handles empty headers and empty payload', () => {
    const message = decodeEventStreamMessage(encodeEventStreamMessage({}, Buffer.alloc(0)));
    expect(message.headers).toEqual({});
    expect(message.payload.length).toBe(0);
  });

  it('decodes many frames in any chunking', () => {
    const frames = Array.from({ length: 40 }, (_, i) =>
      encodeEventStreamMessage({ ':event-type': `e${i}` }, Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(i * 7) }))),
    );
    const all = Buffer.concat(frames);
    const random = seededRandom(7);
    for (const sizer of [() => 1, () => 3, () => 16, () => all.length, () => 1 + Math.floor(random() * 300)]) {
      const messages = decodeInChunks(all, sizer);
      expect(messages.map((m) => m.headers[':event-type'])).toEqual(frames.map((_, i) => `e${i}`));
      expect(messages.map((m) => JSON.parse(m.payload.toString()).i)).toEqual(frames.map((_, i) => i));
    }
  });
});

describe('corrupt and truncated input', () => {
  const frame = encodeEventStreamMessage({ ':event-type': 'x' }, Buffer.from('{"secret-payload":true}'));

  it('rejects a bad prelude CRC', () => {
    const bad = Buffer.from(frame);
    bad[9] ^= 0xff;
    expect(() => new EventStreamDecoder().push(bad)).toThrow(/prelude CRC mismatch/);
  });

  it('rejects a bad message CRC, without echoing the payload', () => {
    const bad = Buffer.from(frame);
    bad[bad.length - 6] ^= 0x01;
    let error: unknown;
    try {
      new EventStreamDecoder().push(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EventStreamError);
    expect((error as Error).message).toMatch(/message CRC mismatch/);
    expect((error as Error).message).not.toContain('secret');
  });

  it('rejects a bad CRC also when the frame arrives byte by byte', () => {
    const bad = Buffer.from(frame);
    bad[20] ^= 0x10;
    const decoder = new EventStreamDecoder();
    expect(() => {
      for (const b of bad) decoder.push(Buffer.from([b]));
    }).toThrow(EventStreamError);
  });

  it('reports a truncated final frame at end()', () => {
    const decoder = new EventStreamDecoder();
    expect(decoder.push(frame.subarray(0, frame.length - 3))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(frame.length - 3);
    expect(() => decoder.end()).toThrow(/truncated event stream/);
  });

  it('reports a truncated prelude at end()', () => {
    const decoder = new EventStreamDecoder();
    decoder.push(frame.subarray(0, 5));
    expect(() => decoder.end()).toThrow(/truncated/);
  });

  it('rejects impossible lengths and header overruns', () => {
    const tooShort = Buffer.alloc(16);
    tooShort.writeUInt32BE(8, 0);
    tooShort.writeUInt32BE(0, 4);
    tooShort.writeUInt32BE(crc32(tooShort, 0, 8), 8);
    expect(() => new EventStreamDecoder().push(tooShort)).toThrow(/out of range/);

    const headerOverrun = Buffer.from(frame);
    headerOverrun.writeUInt32BE(frame.length, 4);
    headerOverrun.writeUInt32BE(crc32(headerOverrun, 0, 8), 8);
    expect(() => new EventStreamDecoder().push(headerOverrun)).toThrow(/headers length/);
  });

  it('rejects an unknown header type', () => {
    const bad = Buffer.from(frame);
    // header: [len=11][":event-type"][type]
    bad[12 + 1 + 11] = 42;
    bad.writeUInt32BE(crc32(bad, 0, bad.length - 4), bad.length - 4);
    expect(() => decodeEventStreamMessage(bad)).toThrow(/unknown event stream header type 42/);
  });
});

describeWithShared('fixtures/bedrock', 'real Bedrock ConverseStream capture', (dir) => {
  const bytes = () => fs.readFileSync(path.join(dir, 'converse-stream-real-claude.eventstream'));
  const expected = () =>
    JSON.parse(fs.readFileSync(path.join(dir, 'converse-stream-real-claude.decoded.json'), 'utf8')) as {
      headers: Record<string, string>;
      payload: unknown;
    }[];

  function check(messages: EventStreamMessage[]): void {
    const want = expected();
    expect(messages).toHaveLength(want.length);
    messages.forEach((m, i) => {
      expect(m.headers).toEqual(want[i].headers);
      expect(JSON.parse(m.payload.toString('utf8'))).toEqual(want[i].payload);
    });
  }

  it('decodes in one piece', () => check(decodeInChunks(bytes(), () => 1 << 20)));
  it('decodes one byte at a time', () => check(decodeInChunks(bytes(), () => 1)));
  it('decodes in random chunk sizes', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = seededRandom(seed);
      check(decodeInChunks(bytes(), () => 1 + Math.floor(random() * 400)));
    }
  });
});
