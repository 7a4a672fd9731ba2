import { Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { checkCrdInteger, checkCrdList, checkCrdString, crdStringError } from '../../lib/limits/crd-field';
import { CRD_LIMITS } from '../../lib/limits/crd-limits.generated';
import { expectThrows } from './expect-error';

const inChart = (id: string) => new Construct(new Chart(Testing.app(), 'platform'), id);

describe('CRD field limits', () => {
  it('accepts values the CRDs accept', () => {
    const gateway = inChart('Gateway');
    const audiences = Array.from({ length: 8 }, (_, i) => `aud-${i}`);
    expect(checkCrdList(gateway, 'jwt.audiences', audiences, CRD_LIMITS.securityPolicyJwtAudiences)).toBe(audiences);
    expect(checkCrdString(gateway, 'http.hostname', '*.example.com', CRD_LIMITS.gatewayListenerHostname)).toBe(
      '*.example.com',
    );
    expect(checkCrdInteger(gateway, 'http.port', 65535, CRD_LIMITS.gatewayListenerPort)).toBe(65535);
    expect(crdStringError(gateway, 'models', 'm'.repeat(1024), CRD_LIMITS.budgetSelectorHeaderValue)).toBeUndefined();
  });

  it('throws if there are more than 8 JWT audiences', () => {
    const audiences = Array.from({ length: 9 }, (_, i) => `a${i}`);
    expectThrows(
      () => checkCrdList(inChart('Gateway'), 'jwt.audiences', audiences, CRD_LIMITS.securityPolicyJwtAudiences),
      'platform/Gateway: invalid jwt.audiences ["a0","a1","a2","a3","a4","a5","a6","a7","a8"]: has 9 entries; the ' +
        'SecurityPolicy field ' +
        'spec.jwt.providers[].audiences allows at most 8',
    );
  });

  it('throws if there are more than 64 certificate refs', () => {
    const names = Array.from({ length: 65 }, (_, i) => `c${i}`);
    expectThrows(
      () => checkCrdList(inChart('Gateway'), 'https.certificateSecretNames', names, CRD_LIMITS.gatewayCertificateRefs),
      `platform/Gateway: invalid https.certificateSecretNames ${JSON.stringify(names).slice(0, 200)}...: ` +
        'has 65 entries; the Gateway field ' +
        'spec.listeners[].tls.certificateRefs allows at most 64',
    );
  });

  it('throws if a model name is over 1,024 characters', () => {
    const model = 'm'.repeat(1025);
    expectThrows(
      () => checkCrdString(inChart('Budget'), 'models', model, CRD_LIMITS.budgetSelectorHeaderValue),
      `platform/Budget: invalid models "${model}": is 1025 characters long; the BackendTrafficPolicy field ` +
        'spec.rateLimit.global.rules[].clientSelectors[].headers[].value allows at most 1024',
    );
  });

  it('throws if a string misses the field pattern', () => {
    expectThrows(
      () => checkCrdString(inChart('Route'), 'hostnames', 'api.Example.com', CRD_LIMITS.httpRouteHostname),
      'platform/Route: invalid hostnames "api.Example.com": does not match ' +
        '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$, the pattern of the HTTPRoute ' +
        'field spec.hostnames[]',
    );
  });

  it('throws if a required string is empty', () => {
    expectThrows(
      () => checkCrdString(inChart('Gateway'), 'jwt.jwksUri', '', CRD_LIMITS.securityPolicyJwksUri),
      'platform/Gateway: invalid jwt.jwksUri "": must not be empty (the SecurityPolicy field ' +
        'spec.jwt.providers[].remoteJWKS.uri)',
    );
  });

  it('throws if a list has fewer entries than the field needs', () => {
    expectThrows(
      () => checkCrdList(inChart('Gateway'), 'listeners', [], CRD_LIMITS.gatewayListeners),
      'platform/Gateway: invalid listeners []: has 0 entries; the Gateway field spec.listeners needs at least 1',
    );
  });

  it('throws if an integer is out of the field range', () => {
    expectThrows(
      () => checkCrdInteger(inChart('Route'), 'retry.statusCodes', 600, CRD_LIMITS.retryStatusCode),
      'platform/Route: invalid retry.statusCodes 600: must be an integer between 100 and 599 (the ' +
        'BackendTrafficPolicy field ' +
        'spec.retry.retryOn.httpStatusCodes[])',
    );
    expectThrows(
      () => checkCrdInteger(inChart('Route'), 'retry.attempts', -1, CRD_LIMITS.retryNumRetries),
      'platform/Route: invalid retry.attempts -1: must be an integer at least 0 (the BackendTrafficPolicy field ' +
        'spec.retry.numRetries)',
    );
    expectThrows(
      () => checkCrdInteger(inChart('Budget'), 'limit', 1.5, CRD_LIMITS.budgetLimitRequests),
      'platform/Budget: invalid limit 1.5: must be an integer between 0 and 4294967295 (the BackendTrafficPolicy ' +
        'field ' +
        'spec.rateLimit.global.rules[].limit.requests)',
    );
  });
});
