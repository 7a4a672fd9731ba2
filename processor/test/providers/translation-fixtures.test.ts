/**
 * Pure-level run of every provider fixture case: request body -> upstream path and body, upstream
 * response (fed whole and in random chunks) -> client response, normalized as the fixtures README says.
 */
import { PROVIDER_TRANSLATORS } from '../../src/providers';
import { findTranslator } from '../../src/translate/registry';
import {
  contextFor,
  FixtureCase,
  normalizeJson,
  normalizeText,
  parseResponseHeaders,
  providerCases,
  seededChunks,
  upstreamBody,
  upstreamContentType,
} from './fixture-cases';
import { expectedClientJson, expectedClientSse } from '../support/fixture-deviations';
import { describeWithShared } from '../support/shared';

function run(fixture: FixtureCase, chunking: (body: Buffer) => Buffer[]) {
  const text = fixture.read('client-request.json')!.toString('utf8');
  const body = JSON.parse(text) as Record<string, unknown>;
  const context = contextFor(fixture, body);
  const factory = findTranslator(context.api, context.operation, context.backend.schema.name, PROVIDER_TRANSLATORS);
  if (!factory) throw new Error(`no translator for ${context.api} ${context.operation} ${context.backend.schema.name}`);
  const translator = factory(context);
  const upstream = translator.request(body);
  const response = translator.response();
  const status = Number(fixture.meta.responseStatus ?? 200);
  const headers = {
    'content-type': upstreamContentType(fixture.meta.responseType),
    ...parseResponseHeaders(fixture.meta.responseHeaders),
  };
  const head = response.head(status, headers);
  const chunks = chunking(upstreamBody(fixture));
  const out: Buffer[] = [];
  if (chunks.length === 0) out.push(response.body(Buffer.alloc(0), true));
  chunks.forEach((chunk, i) => out.push(response.body(chunk, i === chunks.length - 1)));
  return { upstream, head, status, client: Buffer.concat(out).toString('utf8'), usage: response.usage };
}

describeWithShared('fixtures/translation-cases', 'provider translation fixtures (pure translators)', (dir) => {
  const cases = providerCases(dir);

  it('finds the provider cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  describe.each(cases.map((c) => [c.folder, c] as const))('%s', (_folder, fixture) => {
    it('builds the expected upstream request', () => {
      const { upstream } = run(fixture, (b) => [b]);
      const [upstreamPath, query = ''] = upstream.path.split('?');
      expect(upstreamPath).toBe(fixture.meta.expPath);
      if (fixture.meta.expRawQuery !== undefined) expect(query).toBe(fixture.meta.expRawQuery);
      const expected = fixture.read('upstream-request.expected.json');
      if (expected) {
        expect(normalizeJson(JSON.stringify(upstream.body), true)).toEqual(
          normalizeJson(expected.toString('utf8'), true),
        );
      }
    });

    for (const [label, chunking] of [
      ['whole', (b: Buffer) => [b]],
      ['random chunks', (b: Buffer) => seededChunks(b, 11, 40)],
      ['one byte at a time', (b: Buffer) => seededChunks(b, 3, 1)],
    ] as const) {
      it(`translates the response (${label})`, () => {
        const { status, client } = run(fixture, chunking);
        expect(status).toBe(fixture.meta.expStatus);
        const sse = fixture.read('client-response.expected.sse');
        const json = fixture.read('client-response.expected.json');
        if (sse) {
          const expected = expectedClientSse(fixture.folder, sse.toString('utf8'));
          expect(normalizeText(client).trim()).toBe(normalizeText(expected).trim());
        } else if (json) {
          const expected = expectedClientJson(
            fixture.folder,
            json.toString('utf8'),
            fixture.read('upstream-response.json')?.toString('utf8'),
          );
          expect(normalizeJson(client, false)).toEqual(normalizeJson(expected, false));
        } else throw new Error('case has no expected client response');
      });
    }
  });
});
