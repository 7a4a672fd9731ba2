import { loadProtoRoot } from '../../src/grpc/descriptor';
import { encodeProcessingResponse } from '../../src/grpc/encode';
import { HeaderOptionCache } from '../../src/extproc/header-options';
import { HeaderChangeSet, readHeaders, readLastValues } from '../../src/extproc/headers';

const type = loadProtoRoot().lookupType('envoy.service.ext_proc.v3.ProcessingResponse');

function decodedMutation(changes: HeaderChangeSet, cache?: HeaderOptionCache) {
  const bytes = encodeProcessingResponse({ requestBody: { response: { headerMutation: changes.toMutation(cache) } } });
  const decoded = type.toObject(type.decode(bytes), { bytes: String }) as {
    requestBody: {
      response: {
        headerMutation: { setHeaders?: Array<{ header: { key: string; rawValue: string } }>; removeHeaders?: string[] };
      };
    };
  };
  const mutation = decoded.requestBody.response.headerMutation;
  return {
    set: Object.fromEntries(
      (mutation.setHeaders ?? []).map((o) => [o.header.key, Buffer.from(o.header.rawValue, 'base64').toString()]),
    ),
    remove: mutation.removeHeaders ?? [],
  };
}

describe('HeaderChangeSet', () => {
  it('lets the later set or remove of a name win and leaves out headers Envoy ignores', () => {
    const changes = new HeaderChangeSet();
    changes.set('x-a', '1');
    changes.remove('x-a');
    changes.remove('authorization');
    changes.set('authorization', 'Bearer k', true);
    changes.apply({ setHeaders: { 'X-Upper': 'v' }, removeHeaders: ['X-Gone'] });
    changes.set('host', 'elsewhere');
    changes.remove('x-envoy-original-path');
    expect(decodedMutation(changes)).toEqual({
      set: { authorization: 'Bearer k', 'x-upper': 'v' },
      remove: ['x-a', 'x-gone'],
    });
    expect(changes.appliedTo({ 'x-a': '0', accept: '*/*', authorization: 'Bearer client' })).toEqual({
      accept: '*/*',
      authorization: 'Bearer k',
      'x-upper': 'v',
      host: 'elsewhere',
    });
  });

  it('takes repeatable values from the option cache and encodes them as the plain path does', () => {
    const cache = new HeaderOptionCache();
    const build = (signature: string) => {
      const changes = new HeaderChangeSet();
      changes.set('x-ai-eg-model', 'gpt-4o', true);
      changes.apply({ setHeaders: { authorization: 'Bearer sk-1' }, removeHeaders: [], repeatable: true });
      changes.apply({ setHeaders: { 'x-amz-date': signature }, removeHeaders: [] });
      return changes;
    };
    const first = build('20250101T000000Z');
    const second = build('20250101T000001Z');
    expect(decodedMutation(first, cache)).toEqual(decodedMutation(first));
    expect(decodedMutation(second, cache)).toEqual({
      set: { 'x-ai-eg-model': 'gpt-4o', authorization: 'Bearer sk-1', 'x-amz-date': '20250101T000001Z' },
      remove: [],
    });
    const cached = first.toMutation(cache)!.setHeaders!;
    const again = second.toMutation(cache)!.setHeaders!;
    expect(again[0]).toBe(cached[0]);
    expect(again[1]).toBe(cached[1]);
    // Values that never repeat (signatures, dates) are encoded per request, not cached.
    expect(Buffer.isBuffer(again[2])).toBe(false);
  });
});

describe('readLastValues', () => {
  it("takes the last value of a repeated header (Envoy's rate-limit headers come after the upstream's)", () => {
    const map = {
      headers: [
        { key: 'x-ratelimit-limit', rawValue: Buffer.from('60, 60;w=10') },
        { key: 'x-ratelimit-remaining', rawValue: Buffer.from('0') },
        { key: 'content-type', rawValue: Buffer.from('application/json') },
        { key: 'x-ratelimit-limit', rawValue: Buffer.from('100000, 100000;w=86400') },
        { key: 'x-ratelimit-remaining', rawValue: Buffer.from('15000') },
      ],
    };
    expect(readLastValues(map, ['x-ratelimit-limit', 'x-ratelimit-remaining'])).toEqual({
      'x-ratelimit-limit': '100000, 100000;w=86400',
      'x-ratelimit-remaining': '15000',
    });
    // Joining them all would mix the two limiters' values.
    expect(readHeaders(map, ['x-ratelimit-remaining'])).toEqual({ 'x-ratelimit-remaining': '0,15000' });
    expect(readLastValues(undefined, ['x-ratelimit-limit'])).toEqual({});
  });
});
