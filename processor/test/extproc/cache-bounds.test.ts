/** The per-snapshot caches keyed by client-chosen models are bounded by bytes as well as by entries. */
import { HeaderOptionCache } from '../../src/extproc/header-options';
import { RequestAnswerCache } from '../../src/extproc/request-answers';

const MODEL = (i: number) => `gpt-${i}-${'x'.repeat(240)}`;

describe('per-snapshot cache bounds', () => {
  it(
    'RequestAnswerCache: distinct models with large answers stay under 1 MiB; hits reuse, a new ' +
      'credential replaces',
    () => {
      const cache = new RequestAnswerCache();
      let builds = 0;
      const build = () => {
        builds += 1;
        return Buffer.alloc(4096); // e.g. a long static credential in the header mutation
      };
      for (let i = 0; i < 5000; i++) {
        cache.get('r', 'b', MODEL(i), '/v1/chat/completions', false, undefined, build);
        expect(cache.bytes).toBeLessThanOrEqual(1024 * 1024);
      }
      expect(cache.bytes).toBeGreaterThan(0);
      const before = builds;
      const answer = cache.get('r', 'b', MODEL(4999), '/v1/chat/completions', false, undefined, build);
      expect(builds).toBe(before); // a hit
      const sizeBefore = cache.bytes;
      const rotated = cache.get(
        'r',
        'b',
        MODEL(4999),
        '/v1/chat/completions',
        false,
        { setHeaders: { 'x-api-key': 'new' }, removeHeaders: [] },
        build,
      );
      expect(rotated).not.toBe(answer);
      expect(cache.bytes).toBe(sizeBefore); // replaced, not counted twice
    },
  );

  it('HeaderOptionCache: distinct long values stay under 512 KiB', () => {
    const cache = new HeaderOptionCache();
    for (let i = 0; i < 20_000; i++) {
      cache.get('x-ai-eg-model', MODEL(i));
      expect(cache.bytes).toBeLessThanOrEqual(512 * 1024);
    }
    expect(cache.get('x-ai-eg-model', MODEL(19_999))).toBe(cache.get('x-ai-eg-model', MODEL(19_999)));
  });
});
