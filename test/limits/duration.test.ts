import { Chart, Duration, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { CRD_LIMITS } from '../../lib/limits/crd-limits.generated';
import { checkCrdString } from '../../lib/limits/crd-field';
import {
  MAX_GATEWAY_DURATION_MS,
  checkPerTryTimeout,
  formatGatewayDuration,
  gatewayDurationMs,
  gatewayDurationText,
} from '../../lib/limits/duration';
import { expectThrows } from './expect-error';

const route = () => new Construct(new Chart(Testing.app(), 'team'), 'Chat');

describe('formatGatewayDuration', () => {
  it.each([
    ['Duration.seconds(60)', Duration.seconds(60), '60s'],
    ['Duration.millis(1500)', Duration.millis(1500), '1500ms'],
    ['Duration.seconds(99999)', Duration.seconds(99999), '99999s'],
    ['Duration.millis(99999)', Duration.millis(99999), '99999ms'],
    ['Duration.millis(150500)', Duration.millis(150500), '2m30s500ms'],
    ['Duration.hours(30)', Duration.hours(30), '30h'],
    ['Duration.seconds(100000)', Duration.seconds(100000), '27h46m40s'],
    ['Duration.millis(3600001)', Duration.millis(3_600_001), '1h1ms'],
    ['the longest duration', Duration.millis(MAX_GATEWAY_DURATION_MS), '99999h59m59s999ms'],
  ])('writes %s as %s, which every duration field of the CRDs accepts', (_label, duration, text) => {
    expect(formatGatewayDuration(route(), 'requestTimeout', duration)).toBe(text);
    for (const limit of [
      CRD_LIMITS.httpRouteRequestTimeout,
      CRD_LIMITS.retryPerTryTimeout,
      CRD_LIMITS.extProcMessageTimeout,
    ]) {
      expect(checkCrdString(route(), 'requestTimeout', text, limit)).toBe(text);
    }
    expect(gatewayDurationMs(text)).toBe(duration.toMilliseconds());
  });

  it('writes every duration up to the longest one the format holds, and reads it back', () => {
    for (let ms = 1; ms < MAX_GATEWAY_DURATION_MS; ms = ms * 3 + 7) {
      const text = gatewayDurationText(ms);
      expect(text).toMatch(/^([0-9]{1,5}(h|m|s|ms)){1,4}$/);
      expect(gatewayDurationMs(text)).toBe(ms);
    }
  });

  it('throws if the duration is longer than the format can write', () => {
    expectThrows(
      () => formatGatewayDuration(route(), 'processor.messageTimeout', Duration.millis(MAX_GATEWAY_DURATION_MS + 1)),
      'team/Chat: invalid processor.messageTimeout "360000000000ms": is longer than 99999h59m59s999ms, the longest ' +
        'duration the ' +
        'Gateway API format ^([0-9]{1,5}(h|m|s|ms)){1,4}$ can write',
    );
  });

  it('throws if the duration is zero', () => {
    expectThrows(
      () => formatGatewayDuration(route(), 'requestTimeout', Duration.seconds(0)),
      'team/Chat: invalid requestTimeout "0ms": must be a positive whole number of milliseconds',
    );
  });

  it('throws if the duration has a fraction of a millisecond', () => {
    expectThrows(
      () => formatGatewayDuration(route(), 'retry.perTryTimeout', Duration.millis(1.5)),
      'team/Chat: invalid retry.perTryTimeout "1.5ms": must be a positive whole number of milliseconds',
    );
  });
});

describe('gatewayDurationMs', () => {
  it('reads what the CRDs accept and nothing else', () => {
    expect(gatewayDurationMs('1h30m')).toBe(5_400_000);
    expect(gatewayDurationMs('0s')).toBe(0);
    expect(gatewayDurationMs('150500ms')).toBeUndefined();
    expect(gatewayDurationMs('1.5s')).toBeUndefined();
    expect(gatewayDurationMs('1s1s1s1s1s')).toBeUndefined();
    expect(gatewayDurationMs(90)).toBeUndefined();
  });
});

describe('checkPerTryTimeout', () => {
  it('accepts a per-try timeout up to the request timeout, and any when the request timeout is disabled', () => {
    expect(() =>
      checkPerTryTimeout(route(), 'retry.perTryTimeout', Duration.seconds(60), Duration.seconds(60), 'requestTimeout'),
    ).not.toThrow();
    expect(() =>
      checkPerTryTimeout(route(), 'retry.perTryTimeout', Duration.hours(2), Duration.seconds(0), 'requestTimeout'),
    ).not.toThrow();
  });

  it('throws if perTryTimeout is longer than requestTimeout', () => {
    expectThrows(
      () =>
        checkPerTryTimeout(
          route(),
          'retry.perTryTimeout',
          Duration.seconds(90),
          Duration.seconds(60),
          'requestTimeout',
        ),
      'team/Chat: invalid retry.perTryTimeout "90s": is longer than requestTimeout (60s), which bounds the whole ' +
        'request including every ' +
        'retry, so no attempt can run this long; shorten retry.perTryTimeout or raise requestTimeout',
    );
  });
});
