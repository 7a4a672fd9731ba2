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

  it('table and native agree on every short length and alignment (8-byte, 4-byte and single-byte steps)', () => {
    const data = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 157 + 11) & 0xff));
    // A Uint8Array that is not a Buffer, at an odd offset into its ArrayBuffer.
    const padded = Buffer.concat([Buffer.alloc(3, 0xaa), data]);
    const plain = new Uint8Array(padded.buffer, padded.byteOffset + 3, data.length);
    for (let start = 0; start < 8; start++) {
      for (let length = 0; length <= 40; length++) {
        const want = crc32(data, start, start + length);
        expect([crc32Table(data, start, start + length), crc32Table(plain, start, start + length)]).toEqual([
          want,
          want,
        ]);
      }
    }
  });
});

/** A frame with a header section of exactly `length` bytes (2 to 257): one boolean header with a long name. */
function frameWithSection(length: number, payload: Buffer, name = 'n'.repeat(length - 2), value = true): Buffer {
  return encodeEventStreamMessage({ [name]: value }, payload);
}

/** The error a function throws (undefined if it returns). */
function thrown(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  return undefined;
}

/** The message CRC mismatch error a frame with a wrong stored CRC must produce (computed = the true CRC). */
function crcMismatch(frame: Buffer): string {
  const stored = frame.readUInt32BE(frame.length - 4);
  const actual = crc32(frame, 0, frame.length - 4);
  const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
  return `event stream message CRC mismatch (expected ${hex(stored)}, computed ${hex(actual)})`;
}

function withBadCrc(frame: Buffer): Buffer {
  const bad = Buffer.from(frame);
  bad.writeUInt32BE((bad.readUInt32BE(bad.length - 4) ^ 0x00010000) >>> 0, bad.length - 4);
  return bad;
}

function withFlippedByte(frame: Buffer, at: number): Buffer {
  const bad = Buffer.from(frame);
  bad[at] ^= 0x20;
  return bad;
}

describe('message CRC on both sides of the table/zlib length threshold (320 bytes)', () => {
  // Payload lengths around the threshold; the message CRC covers prelude + headers (from the table) + payload.
  const lengths = [0, 1, 7, 100, 318, 319, 320, 321, 322, 400, 5000];

  it('accepts good messages and rejects a flipped payload byte or a wrong CRC, whatever the payload length', () => {
    for (const length of lengths) {
      const payload = Buffer.from(Array.from({ length }, (_, i) => (i * 7 + length) & 0xff));
      const frame = encodeEventStreamMessage({ ':event-type': 'chunk' }, payload);
      const [message] = new EventStreamDecoder().push(frame);
      expect(message.payload).toEqual(payload);
      expect(decodeEventStreamMessage(frame).payload).toEqual(payload);
      if (length > 0) {
        const flipped = withFlippedByte(frame, frame.length - 4 - Math.ceil(length / 2));
        expect(thrown(() => new EventStreamDecoder().push(flipped))?.message).toBe(crcMismatch(flipped));
        expect(thrown(() => decodeEventStreamMessage(flipped))?.message).toBe(crcMismatch(flipped));
      }
      const bad = withBadCrc(frame);
      expect(thrown(() => new EventStreamDecoder().push(bad))?.message).toBe(crcMismatch(bad));
    }
  });

  it('checks long header sections (prelude + headers past the threshold, never cached) before decoding them', () => {
    const frame = encodeEventStreamMessage({ ':event-type': 'e', note: 'x'.repeat(400) }, Buffer.from('{}'));
    expect(new EventStreamDecoder().push(Buffer.concat([frame, frame])).map((m) => m.headers.note)).toEqual([
      'x'.repeat(400),
      'x'.repeat(400),
    ]);
    // A byte of the header section flipped (the header type byte of `note` made unknown): the CRC fails first.
    const typeAt = 12 + 1 + 11 + 1 + 2 + 1 + 1 + 4;
    expect(frame[typeAt]).toBe(7);
    const bad = Buffer.from(frame);
    bad[typeAt] = 42;
    expect(thrown(() => new EventStreamDecoder().push(bad))?.message).toBe(crcMismatch(bad));
  });
});

describe('without zlib.crc32 (Node before 20.15)', () => {
  it('checks messages of every length with the table alone', () => {
    let fallback: typeof import('../../src/eventstream') | undefined;
    jest.isolateModules(() => {
      jest.doMock('node:zlib', () => ({ ...jest.requireActual<object>('node:zlib'), crc32: undefined }));
      fallback = require('../../src/eventstream') as typeof import('../../src/eventstream');
    });
    const es = fallback!;
    expect(es.crc32).toBe(es.crc32Table);
    for (const length of [10, 320, 321, 5000]) {
      const payload = Buffer.from(Array.from({ length }, (_, i) => (i * 13) & 0xff));
      const frame = encodeEventStreamMessage({ ':event-type': 'chunk' }, payload);
      expect(new es.EventStreamDecoder().push(frame)[0].payload).toEqual(payload);
      const flipped = withFlippedByte(frame, frame.length - 5);
      expect(thrown(() => new es.EventStreamDecoder().push(flipped))?.message).toBe(crcMismatch(flipped));
    }
  });
});

describe('repeated header sections (compared by words, their CRC stepped over after 24 repeats)', () => {
  const payload = (i: number) => Buffer.from(JSON.stringify({ i, pad: 'p'.repeat(i % 37) }));

  it('decodes sections of every length class (2-7 bytes, 256 cached at most, 257 never) repeated 60 times', () => {
    for (const length of [2, 3, 4, 5, 6, 7, 8, 9, 87, 255, 256, 257]) {
      const frames = Array.from({ length: 60 }, (_, i) => frameWithSection(length, payload(i)));
      const decoder = new EventStreamDecoder();
      // Varying payload lengths: each message's prelude (and so the CRC register before its section) differs.
      const messages = decoder.push(Buffer.concat(frames));
      expect(messages.map((m) => JSON.parse(m.payload.toString()).i)).toEqual(frames.map((_, i) => i));
      for (const m of messages) expect(m.headers).toEqual({ ['n'.repeat(length - 2)]: true });
      if (length <= 256) {
        for (const m of messages) expect(m.headers).toBe(messages[0].headers);
      } else {
        expect(messages[1].headers).not.toBe(messages[0].headers);
      }
      // Once the section's CRC is stepped over: a wrong CRC still fails with the true CRC as computed, and a
      // flipped payload byte or a flipped byte of the section itself still fails.
      const next = frameWithSection(length, payload(61));
      const bad = withBadCrc(next);
      expect(thrown(() => decoder.push(bad))?.message).toBe(crcMismatch(bad));
      const flippedPayload = withFlippedByte(next, next.length - 6);
      expect(thrown(() => decoder.push(flippedPayload))?.message).toBe(crcMismatch(flippedPayload));
      const flippedSection = withFlippedByte(next, 12 + length - 3 > 12 ? 12 + length - 3 : 12 + 1);
      expect(thrown(() => decoder.push(flippedSection))).toBeInstanceOf(EventStreamError);
      // And the decoder still decodes the section afterwards.
      expect(new EventStreamDecoder().push(Buffer.concat([...frames, next])).at(-1)?.payload).toEqual(payload(61));
    }
  });

  it('keeps at most 64 sections per stream, and steps over the CRC of at most 8, the rest computed', () => {
    // 70 sections of one length, each repeated 30 times (past the step's 24), interleaved.
    const name = (k: number) => `s${String(k).padStart(3, '0')}`;
    const frames = Array.from({ length: 70 * 30 }, (_, i) => frameWithSection(6, payload(i), name(i % 70)));
    const messages = new EventStreamDecoder().push(Buffer.concat(frames));
    messages.forEach((m, i) => expect(m.headers).toEqual({ [name(i % 70)]: true }));
    // The first 64 sections are shared across their repeats; the 6 after them are decoded every time.
    const shared = (k: number) => messages[k].headers === messages[k + 70].headers;
    expect(Array.from({ length: 70 }, (_, k) => shared(k))).toEqual(Array.from({ length: 70 }, (_, k) => k < 64));
    // Past the step's budget, a corrupt message of any cached section still fails with its true CRC.
    const decoder = new EventStreamDecoder();
    decoder.push(Buffer.concat(frames));
    for (const k of [0, 7, 8, 63]) {
      const bad = withBadCrc(frameWithSection(6, payload(k), name(k)));
      expect(thrown(() => decoder.push(bad))?.message).toBe(crcMismatch(bad));
    }
  });

  it('tells apart sections of one length that differ only in the last byte or in one middle word', () => {
    for (const length of [4, 5, 6, 7, 8, 87, 256]) {
      const base = 'n'.repeat(length - 2);
      const middle = base.slice(0, (length - 2) >> 1) + 'm' + base.slice(((length - 2) >> 1) + 1);
      const variants = [
        { name: base, value: true },
        { name: base, value: false }, // the type byte: the section's last byte
        { name: middle, value: true },
      ];
      const frames = Array.from({ length: 90 }, (_, i) => {
        const v = variants[i % 3];
        return frameWithSection(length, payload(i), v.name, v.value);
      });
      const messages = new EventStreamDecoder().push(Buffer.concat(frames));
      messages.forEach((m, i) => {
        const v = variants[i % 3];
        expect(m.headers).toEqual({ [v.name]: v.value });
      });
    }
  });

  it('reads nothing past a message: chunks that are views into larger buffers, with other bytes around', () => {
    const frames = Array.from({ length: 40 }, (_, i) => frameWithSection(87, payload(i)));
    const all = Buffer.concat(frames);
    const backing = Buffer.concat([Buffer.alloc(5, 0xff), all, Buffer.alloc(7, 0xff)]);
    const decoder = new EventStreamDecoder();
    const out: number[] = [];
    for (let i = 0; i < all.length; i += 1000) {
      // A plain Uint8Array (not a Buffer) at an odd offset, ending mid-frame, with 0xff bytes after it.
      const chunk = new Uint8Array(backing.buffer, backing.byteOffset + 5 + i, Math.min(1000, all.length - i));
      for (const m of decoder.push(chunk)) out.push(JSON.parse(m.payload.toString()).i);
    }
    decoder.end();
    expect(out).toEqual(frames.map((_, i) => i));
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
