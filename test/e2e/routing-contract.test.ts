/**
 * The routing contract of issue 10, shown on the same requests. Through the manifests as they were (backend rules
 * matching only `{PathPrefix <endpoint prefix>, backend header}`), Envoy re-matches the path the processor rewrote
 * after ext_proc; when the provider path is not under one of the route's endpoint prefixes (Bedrock `/model/...`,
 * Azure `/openai/deployments/...`, Groq `/openai/v1/...`, a Service under `/api/v1`, and every provider when the
 * route's prefix is not `/v1`), no route matches and Envoy answers its own 404 (flag NR: an empty body, not the
 * route's JSON 404), and the provider is never called. The current manifests serve every one of them
 * (providers.test.ts covers them in full; here the same request is repeated against both).
 */
import { HELLO, rawChat } from './support/clients';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import {
  PREFIX_VARIANTS,
  PROVIDER_CASES,
  providersScenario,
  withoutCatchAllBackendMatches,
  type PrefixVariant,
  type ProviderCase,
} from './support/scenarios';

jest.setTimeout(60_000);

const describeLocal = clusterMode() ? describe.skip : describe;

/** Whether the old manifests could route the provider path: it had to stay under one of the endpoint prefixes. */
function oldManifestsRoute(testCase: ProviderCase, variant: PrefixVariant): boolean {
  return [variant.pathPrefix, variant.anthropicPathPrefix].some((prefix) =>
    testCase.upstreamPath.startsWith(`${prefix}/`),
  );
}

for (const variant of PREFIX_VARIANTS) {
  describeLocal(`old vs current manifests, ${variant.name}`, () => {
    const current = providersScenario(variant);
    const old = withoutCatchAllBackendMatches(current);
    let currentRun: RunningScenario;
    let oldRun: RunningScenario;
    const oldAccessLog: {
      status: number | undefined;
      responseFlags: readonly string[];
      responseCodeDetails: string | undefined;
    }[] = [];

    beforeAll(async () => {
      currentRun = await startScenario(current);
      oldRun = await startScenario(old, {
        objects: old.objects,
        dataPlane: { accessLog: (entry) => oldAccessLog.push(entry) },
      });
    });
    afterAll(async () => {
      await currentRun?.close();
      await oldRun?.close();
    });

    it('the old manifests are the current ones minus the backend-rule matches beyond the endpoint prefixes', () => {
      expect(old.removedMatches).toBeGreaterThan(0);
    });

    describe.each(PROVIDER_CASES.map((c) => [c.factory, c] as const))('%s', (_factory, testCase) => {
      const request = { model: testCase.model, messages: HELLO, max_tokens: 32 };
      const url = (run: RunningScenario) => `${run.gatewayUrl}${variant.pathPrefix}/chat/completions`;

      it(`current manifests: ${testCase.upstreamPath.split('?')[0]} reaches the provider`, async () => {
        await currentRun.fakes[testCase.fake].clear();
        const answer = await rawChat(url(currentRun), request);
        expect(answer.status).toBe(200);
        const records = await currentRun.fakes[testCase.fake].records();
        expect(records.map((r) => [r.path, r.rejected])).toEqual([[testCase.upstreamPath, undefined]]);
      });

      if (oldManifestsRoute(testCase, variant)) {
        it('old manifests: worked too (the provider path stays under an endpoint prefix)', async () => {
          expect((await rawChat(url(oldRun), request)).status).toBe(200);
        });
      } else {
        it("old manifests: Envoy's own 404 (no route after the rewrite), the provider is never called", async () => {
          await oldRun.fakes[testCase.fake].clear();
          oldAccessLog.length = 0;
          const answer = await rawChat(url(oldRun), request);
          expect(answer.status).toBe(404);
          // Not the route's JSON 404 for unknown models: the router found no route (NR) and sends an empty body.
          expect(answer.text).toBe('');
          expect(
            oldAccessLog.map(({ status, responseFlags, responseCodeDetails }) => ({
              status,
              responseFlags,
              responseCodeDetails,
            })),
          ).toEqual([{ status: 404, responseFlags: ['NR'], responseCodeDetails: 'route_not_found' }]);
          expect(await oldRun.fakes[testCase.fake].records()).toEqual([]);
        });
      }
    });
  });
}
