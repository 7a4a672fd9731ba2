import { App, Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { synthRegistry } from '../../lib/limits/registry';
import { expectThrows } from './expect-error';

function app(): { app: App; platform: Chart; team: Chart } {
  const root = Testing.app();
  return {
    app: root,
    platform: new Chart(root, 'platform', { namespace: 'platform' }),
    team: new Chart(root, 'team', { namespace: 'team' }),
  };
}

describe('synthRegistry', () => {
  it('is one registry per app, shared by its charts', () => {
    const first = app();
    expect(synthRegistry(first.platform)).toBe(synthRegistry(new Construct(first.team, 'Route')));
    expect(synthRegistry(first.platform)).not.toBe(synthRegistry(app().platform));
  });

  it('accepts one name per kind and namespace, and the same construct claiming again', () => {
    const { team } = app();
    const chat = new Construct(team, 'Chat');
    const registry = synthRegistry(team);
    expect(() => {
      registry.claimName(chat, 'name', { kind: 'HTTPRoute', namespace: 'team', name: 'chat' });
      registry.claimName(chat, 'name', { kind: 'HTTPRoute', namespace: 'team', name: 'chat' });
      registry.claimName(new Construct(team, 'Other'), 'name', { kind: 'HTTPRoute', namespace: 'other', name: 'chat' });
      registry.claimName(new Construct(team, 'Filter'), 'name', {
        kind: 'HTTPRouteFilter',
        namespace: 'team',
        name: 'chat',
      });
    }).not.toThrow();
  });

  it('throws if two AIRoutes are named chat in one namespace, naming both construct paths', () => {
    const { platform, team } = app();
    synthRegistry(team).claimName(new Construct(team, 'Chat'), 'name', {
      kind: 'HTTPRoute',
      namespace: 'team',
      name: 'chat',
    });
    expectThrows(
      () =>
        synthRegistry(platform).claimName(new Construct(platform, 'TeamChat'), 'name', {
          kind: 'HTTPRoute',
          namespace: 'team',
          name: 'chat',
        }),
      'platform/TeamChat: invalid name "chat": HTTPRoute "team/chat" is already emitted by team/Chat (name); two ' +
        'objects of one kind ' +
        'cannot share a name in a namespace (one would replace the other): give one of them another name',
    );
  });

  it('throws if two AIGateways are named ai, for the cluster-scoped GatewayClass too', () => {
    const { platform, team } = app();
    const registry = synthRegistry(platform);
    registry.claimName(new Construct(platform, 'Gateway'), 'gatewayClass', { kind: 'GatewayClass', name: 'ai' });
    expectThrows(
      () => registry.claimName(new Construct(team, 'Gateway'), 'gatewayClass', { kind: 'GatewayClass', name: 'ai' }),
      'team/Gateway: invalid gatewayClass "ai": GatewayClass "ai" is already emitted by platform/Gateway ' +
        '(gatewayClass); two objects ' +
        'of one kind cannot share a name in a namespace (one would replace the other): give one of them another name',
    );
  });

  it('throws if two backends share a name, naming both construct paths', () => {
    const { platform } = app();
    const registry = synthRegistry(platform);
    registry.claimName(new Construct(platform, 'OpenAI'), 'name', {
      kind: 'Backend',
      namespace: 'platform',
      name: 'openai',
    });
    expectThrows(
      () =>
        registry.claimName(new Construct(platform, 'OpenAI2'), 'name', {
          kind: 'Backend',
          namespace: 'platform',
          name: 'openai',
        }),
      'platform/OpenAI2: invalid name "openai": Backend "platform/openai" is already emitted by platform/OpenAI ' +
        '(name); two objects ' +
        'of one kind cannot share a name in a namespace (one would replace the other): give one of them another name',
    );
  });

  it('records roles once each, in order', () => {
    const { platform, team } = app();
    const registry = synthRegistry(platform);
    const redis = new Construct(platform, 'Redis');
    const budget = new Construct(team, 'Budget');
    expect(registry.registered('RateLimitRedis')).toEqual([]);
    registry.register('RateLimitRedis', redis);
    registry.register('RateLimitRedis', redis);
    registry.register('TokenRateLimit', budget);
    expect(registry.registered('RateLimitRedis')).toEqual([redis]);
    expect(registry.registered('TokenRateLimit')).toEqual([budget]);
  });
});
