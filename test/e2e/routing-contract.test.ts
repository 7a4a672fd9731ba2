/**
 * The routing contract of issue 10, shown on the same request: a Bedrock request through the current manifests
 * reaches Bedrock; through the manifests as they were (backend rules matching only `{PathPrefix <endpoint
 * prefix>, backend header}`), Envoy re-matches the rewritten path `/model/...` after ext_proc, finds no route and
 * answers its own 404 (response flag NR: an empty body, not the route's JSON 404), and Bedrock is never called.
 */
import { HELLO, rawChat } from './support/clients';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { PREFIX_VARIANTS, PROVIDER_CASES, providersScenario, withoutCatchAllBackendMatches } from './support/scenarios';

jest.setTimeout(60_000);

const describeLocal = clusterMode() ? describe.skip : describe;
const bedrock = PROVIDER_CASES.find((c) => c.factory === 'awsBedrock')!;

describeLocal('old manifests vs current manifests, same Bedrock request', () => {
  const current = providersScenario(PREFIX_VARIANTS[0]);
  const old = withoutCatchAllBackendMatches(current);
  const request = { model: bedrock.model, messages: HELLO, max_tokens: 32 };

  it('the old manifests are the current ones minus the backend-rule matches beyond the endpoint prefixes', () => {
    expect(old.removedMatches).toBeGreaterThan(0);
  });

  describe('current manifests', () => {
    let run: RunningScenario;
    beforeAll(async () => {
      run = await startScenario(current);
    });
    afterAll(() => run?.close());

    it('Bedrock receives /model/<id>/converse and the client gets 200', async () => {
      const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, request);
      expect(answer.status).toBe(200);
      const records = await run.fakes.bedrock.records();
      expect(records.map((r) => [r.path, r.rejected])).toEqual([[bedrock.upstreamPath, undefined]]);
    });
  });

  describe('old manifests', () => {
    let run: RunningScenario;
    beforeAll(async () => {
      run = await startScenario(old, { objects: old.objects });
    });
    afterAll(() => run?.close());

    it("Envoy's own 404 (no route after the rewrite), and Bedrock is never called", async () => {
      const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, request);
      expect(answer.status).toBe(404);
      // Not the route's JSON 404 for unknown models: Envoy's router found no route (NR) and sent an empty body.
      expect(answer.text).toBe('');
      expect(await run.fakes.bedrock.records()).toEqual([]);
    });

    it('OpenAI, whose upstream path stays under /v1, still works with the old manifests', async () => {
      const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: HELLO });
      expect(answer.status).toBe(200);
    });
  });
});
