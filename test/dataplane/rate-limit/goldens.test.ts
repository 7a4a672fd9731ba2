/**
 * Envoy Gateway v1.9.0 golden files (../shared/conformance/envoy-gateway) reproduced by our rate-limit builder:
 * policy -> IR rules, IR rules -> per-domain route actions and filter order, IR rules -> service configuration.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import {
  buildRateLimitServiceConfig,
  buildRouteRateLimits,
  listenerRateLimitDomains,
  rateLimitRulesFromPolicy,
} from '../../../lib/dataplane/rate-limit';
import { describeWithShared } from '../../support/shared';
import {
  goDumpRateLimitJson,
  goldenServiceDescriptor,
  normalizeIr,
  routeRateLimitJson,
  ruleFromIr,
  ruleToIr,
  serviceDescriptorYaml,
} from './eg-shapes';

const read = (dir: string, file: string) => parse(fs.readFileSync(path.join(dir, file), 'utf8'));

describeWithShared('conformance/envoy-gateway/xds-translator', 'rate-limit goldens: xds-translator', (dir) => {
  describe('ratelimit-config/multiple-shared-and-unshared', () => {
    const input = read(dir, 'in/ratelimit-config/multiple-shared-and-unshared.yaml');
    const listener = input.http[0];
    const routes = listener.routes.map((r: any) => ({
      name: r.name,
      rateLimitRules: r.traffic.rateLimit.global.rules.map(ruleFromIr),
    }));

    it('builds the per-domain route actions of rateLimitsByDomain', () => {
      const golden = read(dir, 'out/ratelimit-config/multiple-shared-and-unshared.routes.yaml');
      const ours = buildRouteRateLimits(listener.name, routes[0].name, routes[0].rateLimitRules);
      expect([...ours.keys()].sort()).toEqual(Object.keys(golden.rateLimitsByDomain).sort());
      for (const [domain, entries] of Object.entries<any[]>(golden.rateLimitsByDomain)) {
        expect((ours.get(domain) ?? []).map(routeRateLimitJson)).toEqual(entries.map(goDumpRateLimitJson));
      }
    });

    it('builds the rate-limit service configuration of both domains', () => {
      const docs = parseAllDocuments(
        fs.readFileSync(path.join(dir, 'out/ratelimit-config/multiple-shared-and-unshared.yaml'), 'utf8'),
      ).map((d) => d.toJS());
      const ours = buildRateLimitServiceConfig([{ name: listener.name, routes }]);
      expect(ours.map((c) => c.domain).sort()).toEqual(docs.map((d) => d.domain).sort());
      for (const doc of docs) {
        const config = ours.find((c) => c.domain === doc.domain);
        expect(config?.descriptors.map(serviceDescriptorYaml)).toEqual(doc.descriptors.map(goldenServiceDescriptor));
      }
    });
  });

  describe('xds-ir/ratelimit-global-shared', () => {
    const input = read(dir, 'in/xds-ir/ratelimit-global-shared.yaml');
    const listener = input.http[0];
    const routes = listener.routes.map((r: any) => ({
      name: r.name,
      rateLimitRules: r.traffic.rateLimit.global.rules.map(ruleFromIr),
    }));

    it('puts one ratelimit filter per domain on the listener, in EG order, named as EG names them', () => {
      const golden = read(dir, 'out/xds-ir/ratelimit-global-shared.listeners.yaml');
      const filters = golden[0].defaultFilterChain.filters[0].typedConfig.httpFilters
        .filter((f: any) => f.name.startsWith('envoy.filters.http.ratelimit'))
        .map((f: any) => ({
          name: f.name,
          domain: f.typedConfig.domain,
          disableXEnvoyRatelimitedHeader: f.typedConfig.disableXEnvoyRatelimitedHeader,
          headers: f.typedConfig.enableXRatelimitHeaders,
        }));
      const ours = listenerRateLimitDomains(listener.name, routes).map((domain) => ({
        name: domain === listener.name ? 'envoy.filters.http.ratelimit' : `envoy.filters.http.ratelimit/${domain}`,
        domain,
        // What createRateLimitFilter does by default: no x-envoy-ratelimited, draft-03 x-ratelimit-* headers.
        disableXEnvoyRatelimitedHeader: true,
        headers: 'DRAFT_VERSION_03',
      }));
      expect(ours).toEqual(filters);
    });

    it(
      'gives every route its per-filter RateLimitPerRoute (domain, actions, hits addends, ' + 'stream-done entries)',
      () => {
        const golden = read(dir, 'out/xds-ir/ratelimit-global-shared.routes.yaml');
        const goldenRoutes = golden[0].virtualHosts[0].routes;
        expect(goldenRoutes.map((r: any) => r.name)).toEqual(routes.map((r: any) => r.name));
        for (const route of routes) {
          const expected = goldenRoutes.find((r: any) => r.name === route.name).typedPerFilterConfig;
          const ours: Record<string, unknown> = {};
          for (const [domain, rateLimits] of buildRouteRateLimits(listener.name, route.name, route.rateLimitRules)) {
            const filter =
              domain === listener.name ? 'envoy.filters.http.ratelimit' : `envoy.filters.http.ratelimit/${domain}`;
            ours[filter] = {
              '@type': 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute',
              domain,
              rateLimits: rateLimits.map(routeRateLimitJson),
            };
          }
          expect(ours).toEqual(expected);
        }
      },
    );
  });
});

describeWithShared(
  'conformance/envoy-gateway/gatewayapi',
  'rate-limit goldens: BackendTrafficPolicy -> IR rules',
  (dir) => {
    for (const name of ['backendtrafficpolicy-with-ratelimit', 'backendtrafficpolicy-with-shared-ratelimit']) {
      it(`${name}: every policy's rules equal the IR rules EG attached to routes`, () => {
        const input = read(dir, `${name}.in.yaml`);
        const output = read(dir, `${name}.out.yaml`);
        const irRules = new Map<string, unknown>();
        for (const ir of Object.values<any>(output.xdsIR)) {
          for (const listener of ir.http ?? []) {
            for (const route of listener.routes ?? []) {
              for (const rule of route.traffic?.rateLimit?.global?.rules ?? [])
                irRules.set(rule.name, normalizeIr(rule));
            }
          }
        }
        let compared = 0;
        for (const policy of input.backendTrafficPolicies) {
          for (const rule of rateLimitRulesFromPolicy(policy)) {
            if (!irRules.has(rule.name)) continue; // a policy whose target did not resolve attaches nothing
            expect(normalizeIr(ruleToIr(rule))).toEqual(irRules.get(rule.name));
            compared++;
          }
        }
        expect(compared).toBe(irRules.size);
        expect(compared).toBeGreaterThan(0);
      });
    }
  },
);
