/**
 * Issue 12 item 4 through the real constructs: every mistake the API server (with the CRDs) would reject, and every
 * one that used to synthesize silently, fails at construction or at synth with the construct path, the prop and
 * the value. The validators' own tests (test/limits) pin every variant; these pin the wiring, message for message.
 */
import { Chart, Duration, Testing, type App } from 'cdk8s';
import type { Construct } from 'constructs';
import {
  AIGateway,
  AIRoute,
  AllowedRoutes,
  Credentials,
  GatewayReference,
  ModelMatch,
  ModelScope,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  TokenRateLimit,
} from '../lib';
import { synthRegistry } from '../lib/limits/registry';
import { expectThrows } from './limits/expect-error';
import { findOne, synthAll } from './support/synth';

const SAME_NAME =
  'two objects of one kind cannot share a name in a namespace (one would replace the other): ' +
  'give one of them another name';

/** A gateway `platform/gw` admitting routes from `team`, an OpenAI backend beside it, a chart per namespace. */
function setup(gatewayProps: ConstructorParameters<typeof AIGateway>[2] = {}) {
  const app = Testing.app();
  const platform = new Chart(app, 'platform', { namespace: 'platform' });
  const team = new Chart(app, 'team', { namespace: 'team' });
  const gateway = new AIGateway(platform, 'Gateway', {
    name: 'gw',
    allowedRoutes: AllowedRoutes.fromNamespaces('platform', 'team'),
    ...gatewayProps,
  });
  const openai = ProviderBackend.openAI(platform, 'OpenAI', {
    name: 'openai',
    credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
  });
  return { app, platform, team, gateway, openai };
}

/** Budgets need a RateLimitRedis in the app; an external one emits no objects. */
function withRedis(scope: Construct): void {
  RateLimitRedis.external(scope, 'Redis', { url: 'redis.example:6379' });
}

const synth = (app: App) => () => synthAll(app);

describe('Durations the Gateway API format writes in several units', () => {
  it('splits request and per-try timeouts of over 5 digits in one unit into units (manifests validate)', () => {
    const { app, team, gateway, openai } = setup({ processor: { messageTimeout: Duration.hours(30) } });
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      requestTimeout: Duration.millis(150500),
      retry: { attempts: 1, perTryTimeout: Duration.millis(100500) },
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const all = synthAll(app);
    const route = findOne(all, 'HTTPRoute', 'chat');
    expect(route.spec.rules[0].timeouts).toEqual({ request: '2m30s500ms' });
    expect(findOne(all, 'BackendTrafficPolicy', 'chat').spec.retry.perRetry).toEqual({ timeout: '1m40s500ms' });
    expect(findOne(all, 'EnvoyExtensionPolicy').spec.extProc[0].messageTimeout).toBe('30h');
  });

  it('keeps one unit while it fits 5 digits', () => {
    const { app, team, gateway, openai } = setup();
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      requestTimeout: Duration.millis(99999),
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    expect(findOne(synthAll(app), 'HTTPRoute', 'chat').spec.rules[0].timeouts).toEqual({ request: '99999ms' });
  });

  it('throws if the processor message timeout is longer than the format can write', () => {
    expectThrows(
      () => setup({ processor: { messageTimeout: Duration.hours(100000) } }),
      'platform/Gateway/Processor: invalid processor.messageTimeout "360000000000ms": is longer than ' +
        '99999h59m59s999ms, the longest duration the Gateway API format ^([0-9]{1,5}(h|m|s|ms)){1,4}$ can write',
    );
  });

  it('throws if a route timeout is longer than the format can write', () => {
    const { team, gateway, openai } = setup();
    expectThrows(
      () =>
        new AIRoute(team, 'Chat', {
          gateway,
          requestTimeout: Duration.hours(100000),
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        }),
      'team/Chat: invalid requestTimeout "360000000000ms": is longer than 99999h59m59s999ms, the longest duration ' +
        'the Gateway API format ^([0-9]{1,5}(h|m|s|ms)){1,4}$ can write',
    );
  });
});

describe('throws', () => {
  it('if more than 8 JWT audiences are accepted', () => {
    const audiences = Array.from({ length: 9 }, (_, i) => `a${i}`);
    expectThrows(
      () =>
        setup({
          jwt: { issuer: 'https://login.example.com', jwksUri: 'https://login.example.com/jwks.json', audiences },
        }),
      'platform/Gateway: invalid jwt.audiences ["a0","a1","a2","a3","a4","a5","a6","a7","a8"]: has 9 entries; the ' +
        'SecurityPolicy field spec.jwt.providers[].audiences allows at most 8',
    );
  });

  it('if more JWT claims are mapped than fit beside the gateway-owned headers in its ClientTrafficPolicy', () => {
    const jwt = (count: number) => ({
      issuer: 'https://login.example.com',
      jwksUri: 'https://login.example.com/jwks.json',
      claimToHeaders: Object.fromEntries(Array.from({ length: count }, (_, i) => [`c${i}`, `x-c${i}`])),
    });
    expect(() => setup({ jwt: jwt(59) })).not.toThrow();
    const shown = JSON.stringify(jwt(60).claimToHeaders).slice(0, 200);
    expectThrows(
      () => setup({ jwt: jwt(60) }),
      `platform/Gateway: invalid jwt.claimToHeaders ${shown}...: maps 60 claims; at most 59 fit beside the ` +
        `gateway's 5 own ` +
        'headers in the ClientTrafficPolicy field spec.headers.earlyRequestHeaders.remove (at most 64)',
    );
  });

  it('if an HTTPS listener has more than 64 certificate refs', () => {
    const certificateSecretNames = Array.from({ length: 65 }, (_, i) => `c${i}`);
    const shown = JSON.stringify(certificateSecretNames).slice(0, 200);
    expectThrows(
      () => setup({ https: { certificateSecretNames } }),
      `platform/Gateway: invalid https.certificateSecretNames ${shown}...: has 65 entries; the Gateway field ` +
        'spec.listeners[].tls.certificateRefs allows at most 64',
    );
  });

  it('if a service account annotation key has a space', () => {
    expectThrows(
      () =>
        setup({
          processor: {
            serviceAccountAnnotations: { 'eks.amazonaws.com/role arn': 'arn:aws:iam::123456789012:role/ai' },
          },
        }),
      'platform/Gateway/Processor: invalid processor.serviceAccountAnnotations "eks.amazonaws.com/role arn": is ' +
        'not a valid annotation key: it has the name part "role arn", which must consist of letters, digits, "-", ' +
        '"_" and ".", and start and end with a letter or digit',
    );
  });

  it('if AllowedRoutes.fromNamespaceLabels has a label value the API server rejects', () => {
    expectThrows(
      () => setup({ allowedRoutes: AllowedRoutes.fromNamespaceLabels({ tier: 'gold plus' }) }),
      'platform/Gateway: invalid allowedRoutes.tier "gold plus": is not a valid label value: it must be empty or ' +
        'consist of letters, digits, "-", "_" and ".", and start and end with a letter or digit',
    );
  });

  it('if a budget names a model of more than 1,024 characters', () => {
    const { platform, gateway } = setup();
    const model = 'm'.repeat(1025);
    expectThrows(
      () =>
        new TokenRateLimit(platform, 'Budget', {
          target: gateway,
          limit: 1000,
          per: RateLimitUnit.HOUR,
          models: ModelScope.only(model),
        }),
      `platform/Budget: invalid models "${model}": is 1025 characters long; the BackendTrafficPolicy field ` +
        'spec.rateLimit.global.rules[].clientSelectors[].headers[].value allows at most 1024',
    );
  });

  it('if two AIRoutes named chat are in one namespace (one gateway)', () => {
    const { team, gateway, openai } = setup();
    const rules = [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }];
    new AIRoute(team, 'Chat', { name: 'chat', gateway, rules });
    expectThrows(
      () =>
        new AIRoute(team, 'Chat2', {
          name: 'chat',
          gateway,
          rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: openai }] }],
        }),
      `team/Chat2: invalid name "chat": HTTPRoute "team/chat" is already emitted by team/Chat (name); ${SAME_NAME}`,
    );
  });

  it('if two AIRoutes named chat are in one namespace (two gateways)', () => {
    const { app, team, gateway, openai } = setup();
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const other = new Chart(app, 'other', { namespace: 'team' });
    expectThrows(
      () =>
        new AIRoute(other, 'Chat', {
          name: 'chat',
          gateway: GatewayReference.fromName('shared', 'infra'),
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        }),
      `other/Chat: invalid name "chat": HTTPRoute "team/chat" is already emitted by team/Chat (name); ${SAME_NAME}`,
    );
  });

  it('if two AIGateways named ai are in one namespace', () => {
    const app = Testing.app();
    const platform = new Chart(app, 'platform', { namespace: 'platform' });
    new AIGateway(platform, 'A', { name: 'ai' });
    expectThrows(
      () => new AIGateway(platform, 'B', { name: 'ai' }),
      `platform/B: invalid name "ai": Gateway "platform/ai" is already emitted by platform/A (name); ${SAME_NAME}`,
    );
  });

  it('if two AIGateways named ai in two namespaces both emit the GatewayClass ai', () => {
    const app = Testing.app();
    new AIGateway(new Chart(app, 'one', { namespace: 'one' }), 'Gateway', { name: 'ai' });
    expectThrows(
      () => new AIGateway(new Chart(app, 'two', { namespace: 'two' }), 'Gateway', { name: 'ai' }),
      `two/Gateway: invalid gatewayClass "ai": GatewayClass "ai" is already emitted by one/Gateway ` +
        `(gatewayClass); ${SAME_NAME}`,
    );
  });

  it('if two ProviderBackends emit a Backend of one name in one namespace', () => {
    const { platform } = setup();
    expectThrows(
      () =>
        ProviderBackend.openAI(platform, 'OpenAI2', {
          name: 'openai',
          credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
        }),
      `platform/OpenAI2: invalid name "openai": Backend "platform/openai" is already emitted by platform/OpenAI ` +
        `(name); ${SAME_NAME}`,
    );
  });

  it('if two backends of a route have one name in the processor config', () => {
    const { platform, team, gateway } = setup();
    const a = ProviderBackend.kubernetesService(platform, 'VllmA', { serviceName: 'vllm', port: 8000 });
    const b = ProviderBackend.kubernetesService(platform, 'VllmB', { serviceName: 'vllm', port: 8000 });
    expectThrows(
      () =>
        new AIRoute(team, 'Chat', {
          name: 'chat',
          gateway,
          rules: [{ models: [ModelMatch.prefix('llama-')], backends: [{ backend: a }, { backend: b }] }],
        }),
      'team/Chat: invalid rules[0].backends[1].backend "vllm.platform.chat.team": backends platform/VllmB and ' +
        'platform/VllmA (rules[0].backends[0].backend) have the same name in the processor config, which tells ' +
        'backends apart by name; give one of the ProviderBackends another name',
    );
  });

  it('at synth if two objects of one kind get one derived name (route and gateway processors)', () => {
    const app = Testing.app();
    const team = new Chart(app, 'team', { namespace: 'team' });
    new AIGateway(team, 'Gateway', { name: 'chat' });
    const openai = ProviderBackend.openAI(team, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
    });
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway: GatewayReference.fromName('shared', 'infra'),
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    expectThrows(
      synth(app),
      'team/Chat/Processor/Config/Resource: invalid metadata.name "chat-processor-config": ConfigMap ' +
        '"team/chat-processor-config" is also emitted by team/Gateway/Processor/Config/Resource; two objects of one ' +
        'kind cannot share a name in a namespace (one would replace the other): give the constructs that emit them ' +
        'different names',
    );
  });

  it('at synth if the app has budgets but no RateLimitRedis', () => {
    const { app, platform, gateway } = setup();
    new TokenRateLimit(platform, 'Budget', { target: gateway, limit: 1000, per: RateLimitUnit.HOUR });
    expectThrows(
      synth(app),
      'platform/Budget: invalid target "platform/Gateway": is a token budget, but the app has no RateLimitRedis: ' +
        'Envoy Gateway enforces budgets with its rate-limit service, which runs only with a Redis, so this budget ' +
        'would never be enforced; add RateLimitRedis.inCluster() (or RateLimitRedis.external() for a Redis Envoy ' +
        'Gateway already uses) and install Envoy Gateway with its helmValues',
    );
  });

  it('at synth if ModelScope.only names a model no rule of the gateway serves', () => {
    const { app, platform, team, gateway, openai } = setup();
    withRedis(platform);
    new TokenRateLimit(platform, 'Budget', {
      target: gateway,
      limit: 1000,
      per: RateLimitUnit.HOUR,
      models: ModelScope.only('gpt-4o-mini'),
    });
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o'), ModelMatch.prefix('claude-')], backends: [{ backend: openai }] }],
    });
    expectThrows(
      synth(app),
      'platform/Budget: invalid models "gpt-4o-mini": no rule the budget covers serves this model (the rules ' +
        'match Exact(gpt-4o) of team/Chat, Prefix(claude-) of team/Chat), so it would never count a request; name a ' +
        'model a rule serves, or use ModelScope.eachModel()',
    );
  });

  it('at synth if ModelScope.only is used on a gateway without AIRoutes', () => {
    const { app, platform, gateway } = setup();
    withRedis(platform);
    new TokenRateLimit(platform, 'Budget', {
      target: gateway,
      limit: 1000,
      per: RateLimitUnit.HOUR,
      models: ModelScope.only('gpt-4o'),
    });
    expectThrows(
      synth(app),
      'platform/Budget: invalid models "gpt-4o": no rule the budget covers serves this model (the budget covers ' +
        'no AIRoute), so it would never count a request; name a model a rule serves, or use ModelScope.eachModel()',
    );
  });

  it('at synth if ModelScope.only names a model its route does not serve (another route of the gateway does)', () => {
    const { app, platform, team, gateway, openai } = setup();
    withRedis(platform);
    const chat = new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    new AIRoute(team, 'Mini', {
      name: 'mini',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: openai }] }],
    });
    new TokenRateLimit(chat, 'Budget', {
      target: chat,
      limit: 1000,
      per: RateLimitUnit.HOUR,
      models: ModelScope.only('gpt-4o-mini'),
    });
    expectThrows(
      synth(app),
      'team/Chat/Budget: invalid models "gpt-4o-mini": no rule the budget covers serves this model (the rules ' +
        'match Exact(gpt-4o) of team/Chat), so it would never count a request; name a model a rule serves, or use ' +
        'ModelScope.eachModel()',
    );
  });

  it('if a route hostname is outside the hostname of every listener', () => {
    const { team, gateway, openai } = setup({
      http: { hostname: 'api.example.com' },
      https: { hostname: '*.example.com', certificateSecretNames: ['tls'] },
    });
    expectThrows(
      () =>
        new AIRoute(team, 'Chat', {
          gateway,
          hostnames: ['chat.example.org'],
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        }),
      'team/Chat: invalid hostnames "chat.example.org": is outside the hostname of every listener of gateway ' +
        'platform/gw (http "api.example.com", https "*.example.com"); Envoy Gateway ignores a route hostname no ' +
        'listener accepts, and refuses the route when it has no other; use a hostname the listeners accept or widen ' +
        'a listener hostname',
    );
  });

  it('if perTryTimeout is longer than requestTimeout', () => {
    const { team, gateway, openai } = setup();
    expectThrows(
      () =>
        new AIRoute(team, 'Chat', {
          gateway,
          retry: { attempts: 2, perTryTimeout: Duration.seconds(90) },
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        }),
      'team/Chat: invalid retry.perTryTimeout "90s": is longer than requestTimeout (60s), which bounds the whole ' +
        'request including every retry, so no attempt can run this long; shorten retry.perTryTimeout or raise ' +
        'requestTimeout',
    );
  });

  it('if an AWS region has a typo', () => {
    const { platform } = setup();
    expectThrows(
      () =>
        ProviderBackend.awsBedrock(platform, 'Bedrock', {
          region: 'us-east1',
          credentials: Credentials.awsDefaultChain(),
        }),
      'platform: invalid Bedrock.region "us-east1": is not an AWS region name (<area>-<direction>-<number>, e.g. ' +
        '"us-east-1", "us-gov-west-1", "cn-north-1", "eu-central-2"); did you mean "us-east-1"?',
    );
  });
});

describe('app-wide checks', () => {
  it('pass with the RateLimitRedis, and the route serving a ModelScope.only model, after the budget', () => {
    const { app, platform, team, gateway, openai } = setup();
    new TokenRateLimit(platform, 'Budget', {
      target: gateway,
      limit: 1000,
      per: RateLimitUnit.HOUR,
      models: ModelScope.only('gpt-4o'),
    });
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] }],
    });
    withRedis(platform);
    expect(() => synthAll(app)).not.toThrow();
  });

  it('skip in a partial build (the Pulumi front end building one component early)', () => {
    const { app, platform, gateway } = setup();
    new TokenRateLimit(platform, 'Budget', {
      target: gateway,
      limit: 1000,
      per: RateLimitUnit.HOUR,
      models: ModelScope.only('gpt-4o'),
    });
    synthRegistry(app).markPartial();
    expect(() => synthAll(app)).not.toThrow();
  });

  it('let the same names be used in two apps', () => {
    for (let i = 0; i < 2; i++) {
      const { app, team, gateway, openai } = setup();
      new AIRoute(team, 'Chat', {
        name: 'chat',
        gateway,
        rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
      });
      expect(() => synthAll(app)).not.toThrow();
    }
  });
});
