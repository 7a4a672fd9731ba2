import { Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { checkRouteHostnames, hostnamesIntersect } from '../../lib/limits/hostnames';
import { expectThrows } from './expect-error';

const route = () => new Construct(new Chart(Testing.app(), 'team'), 'Chat');

describe('hostnamesIntersect (Gateway API listener and route hostnames)', () => {
  it.each([
    [undefined, 'api.example.com', true],
    ['api.example.com', 'api.example.com', true],
    ['*.example.com', 'api.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['api.example.com', '*.example.com', true],
    ['*.example.com', '*.api.example.com', true],
    ['*.api.example.com', '*.example.com', true],
    ['api.example.com', 'api.example.org', false],
    ['*.example.com', 'api.example.org', false],
    ['*.example.com', 'badexample.com', false],
  ])('listener %s and route %s: %s', (listener, hostname, expected) => {
    expect(hostnamesIntersect(listener, hostname)).toBe(expected);
  });
});

describe('checkRouteHostnames', () => {
  const listeners = [
    { name: 'http', hostname: 'api.example.com' },
    { name: 'https', hostname: '*.example.com' },
  ];

  it('accepts hostnames some listener accepts', () => {
    expect(() =>
      checkRouteHostnames(route(), 'hostnames', ['api.example.com', 'chat.example.com'], 'platform/gw', listeners),
    ).not.toThrow();
    expect(() =>
      checkRouteHostnames(route(), 'hostnames', ['anything.org'], 'platform/gw', [{ name: 'http' }]),
    ).not.toThrow();
  });

  it("throws if a route hostname is outside the listener's hostname", () => {
    expectThrows(
      () =>
        checkRouteHostnames(route(), 'hostnames', ['chat.example.com', 'chat.example.org'], 'platform/gw', listeners),
      'team/Chat: invalid hostnames "chat.example.org": is outside the hostname of every listener of gateway ' +
        'platform/gw ' +
        '(http "api.example.com", https "*.example.com"); Envoy Gateway ignores a route hostname no listener ' +
        'accepts, and refuses ' +
        'the route when it has no other; use a hostname the listeners accept or widen a listener hostname',
    );
  });

  it('throws if a route hostname is the parent domain of a wildcard listener', () => {
    expectThrows(
      () =>
        checkRouteHostnames(route(), 'hostnames', ['example.com'], 'platform/gw', [
          { name: 'https', hostname: '*.example.com' },
        ]),
      'team/Chat: invalid hostnames "example.com": is outside the hostname of every listener of gateway platform/gw ' +
        '(https "*.example.com"); ' +
        'Envoy Gateway ignores a route hostname no listener accepts, and refuses the route when it has no other; use ' +
        'a hostname the ' +
        'listeners accept or widen a listener hostname',
    );
  });
});
