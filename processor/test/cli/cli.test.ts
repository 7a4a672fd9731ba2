import { CliError, parseCli, splitHostPort, USAGE } from '../../src/cli';

describe('parseCli', () => {
  it('has the documented defaults', () => {
    expect(parseCli([], {})).toEqual({
      config: '/etc/ai-gateway/config/config.json',
      secretsDir: '/etc/ai-gateway/secrets',
      listen: '0.0.0.0:9002',
      admin: '0.0.0.0:9090',
      logLevel: 'info',
      drainTimeoutMs: 25000,
      shutdownDelayMs: 0,
      streamIdleTimeoutMs: 300000,
      pollIntervalMs: 2000,
      tracing: undefined,
    });
  });

  it('turns tracing on with an OTLP endpoint, from flags or environment', () => {
    expect(parseCli(['--otlp-endpoint', 'http://otel-collector.observability:4318'], {})).toMatchObject({
      tracing: {
        endpoint: 'http://otel-collector.observability:4318/v1/traces',
        serviceName: 'ai-gateway-processor',
        samplingRatio: 1,
        contentMaxBytes: 0,
      },
    });
    const env = {
      AI_GATEWAY_OTLP_ENDPOINT: 'https://collector.example.com/custom/traces',
      AI_GATEWAY_OTLP_SERVICE_NAME: 'gw-eu',
      AI_GATEWAY_TRACE_SAMPLING_RATIO: '0.25',
      AI_GATEWAY_TRACE_CONTENT_BYTES: '2048',
    };
    expect(parseCli([], env)).toMatchObject({
      tracing: {
        endpoint: 'https://collector.example.com/custom/traces',
        serviceName: 'gw-eu',
        samplingRatio: 0.25,
        contentMaxBytes: 2048,
      },
    });
    expect(parseCli(['--trace-sampling-ratio=0'], env)).toMatchObject({ tracing: { samplingRatio: 0 } });
    expect(USAGE).toContain('--otlp-endpoint');
  });

  it('reads the shutdown delay and the stream idle timeout from flags and environment; 0 is allowed for both', () => {
    const env = { AI_GATEWAY_SHUTDOWN_DELAY_MS: '5000', AI_GATEWAY_STREAM_IDLE_TIMEOUT_MS: '120000' };
    expect(parseCli([], env)).toMatchObject({ shutdownDelayMs: 5000, streamIdleTimeoutMs: 120000 });
    expect(parseCli(['--shutdown-delay-ms', '0', '--stream-idle-timeout-ms=0'], env)).toMatchObject({
      shutdownDelayMs: 0,
      streamIdleTimeoutMs: 0,
    });
    expect(parseCli(['--shutdown-delay-ms=7000', '--drain-timeout-ms', '125000'], {})).toMatchObject({
      shutdownDelayMs: 7000,
      drainTimeoutMs: 125000,
    });
  });

  it('documents every flag and its environment variable in the usage text', () => {
    for (const [flag, env] of [
      ['--shutdown-delay-ms', 'AI_GATEWAY_SHUTDOWN_DELAY_MS'],
      ['--drain-timeout-ms', 'AI_GATEWAY_DRAIN_TIMEOUT_MS'],
      ['--stream-idle-timeout-ms', 'AI_GATEWAY_STREAM_IDLE_TIMEOUT_MS'],
    ]) {
      expect(USAGE).toContain(flag);
      expect(USAGE).toContain(env);
    }
    expect(USAGE).toContain('default 300000');
  });

  it('reads flags (both spellings) over environment variables', () => {
    const env = {
      AI_GATEWAY_CONFIG: '/env/config.json',
      AI_GATEWAY_LISTEN: 'unix:/run/env.sock',
      AI_GATEWAY_ADMIN: '127.0.0.1:1',
      AI_GATEWAY_SECRETS_DIR: '/env/secrets',
    };
    expect(parseCli([], env)).toMatchObject({
      config: '/env/config.json',
      listen: 'unix:/run/env.sock',
      admin: '127.0.0.1:1',
      secretsDir: '/env/secrets',
    });
    expect(
      parseCli(['--config', '/flag.json', '--listen=unix:/run/p.sock', '--drain-timeout-ms', '500'], env),
    ).toMatchObject({
      config: '/flag.json',
      listen: 'unix:/run/p.sock',
      drainTimeoutMs: 500,
    });
    expect(parseCli(['--help'], {})).toBe('help');
  });

  it.each([
    [['--bogus'], 'unknown option "--bogus"'],
    [['--config'], '--config needs a value'],
    [['--listen', 'nowhere'], '--listen must be host:port or unix:/path, got "nowhere"'],
    [['--admin', 'unix:/x'], '--admin must be host:port, got "unix:/x"'],
    [['--drain-timeout-ms', '-1'], '--drain-timeout-ms must be a positive integer, got "-1"'],
    [['--drain-timeout-ms', '0'], '--drain-timeout-ms must be a positive integer, got "0"'],
    [['--shutdown-delay-ms', '-5'], '--shutdown-delay-ms must be a non-negative integer, got "-5"'],
    [['--shutdown-delay-ms', '1.5'], '--shutdown-delay-ms must be a non-negative integer, got "1.5"'],
    [['--stream-idle-timeout-ms', '5m'], '--stream-idle-timeout-ms must be a non-negative integer, got "5m"'],
    [['--log-level', 'loud'], /--log-level must be one of/],
    [['--otlp-endpoint', 'collector:4318'], '--otlp-endpoint must be an http(s) URL, got "collector:4318"'],
    [['--otlp-endpoint', 'grpc://collector:4317'], '--otlp-endpoint must be an http(s) URL'],
    [['--otlp-endpoint', 'https://user:pw@collector'], '--otlp-endpoint must not carry credentials'],
    [['--trace-sampling-ratio', '0.5'], '--trace-sampling-ratio needs --otlp-endpoint'],
    [['--otlp-endpoint', 'http://c:4318', '--trace-sampling-ratio', '1.5'], /--trace-sampling-ratio must be a number/],
    [['--otlp-endpoint', 'http://c:4318', '--trace-sampling-ratio', '-0.1'], /--trace-sampling-ratio must be/],
    [['--otlp-endpoint', 'http://c:4318', '--trace-sampling-ratio', 'half'], /--trace-sampling-ratio must be/],
    [['--otlp-endpoint', 'http://c:4318', '--trace-content-bytes', '70000'], /must be at most 65536/],
    [['--otlp-endpoint', 'http://c:4318', '--trace-content-bytes', '-1'], /must be a non-negative integer/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(CliError);
    expect(() => parseCli(argv, {})).toThrow(message);
  });

  it('reads development upstreams for fallback attempts, and refuses malformed ones by name', () => {
    const options = parseCli(['--dev-upstreams', 'openai=http://127.0.0.1:8080, claude=https://localhost:9443'], {});
    if (options === 'help') throw new Error('expected options');
    expect([...options.egress!.devUpstreams!].map(([name, url]) => `${name}=${url.href}`)).toEqual([
      'openai=http://127.0.0.1:8080/',
      'claude=https://localhost:9443/',
    ]);
    expect((parseCli([], { AI_GATEWAY_DEV_UPSTREAMS: 'a=http://h:1' }) as { egress: unknown }).egress).toBeDefined();
    expect((parseCli([], {}) as { egress: unknown }).egress).toBeUndefined();
    expect(() => parseCli(['--dev-upstreams', 'openai'], {})).toThrow(
      '--dev-upstreams entries must be <backend>=<http(s)://host:port>, got "openai"',
    );
    expect(() => parseCli(['--dev-upstreams', 'a=ftp://h:1'], {})).toThrow(CliError);
    expect(() => parseCli(['--dev-upstreams', 'a=http://h:1/v1'], {})).toThrow(CliError);
    expect(() => parseCli(['--dev-upstreams', 'a=http://h:1,a=http://h:2'], {})).toThrow(
      '--dev-upstreams names backend "a" twice',
    );
  });

  it('splits host and port, including IPv6', () => {
    expect(splitHostPort('0.0.0.0:9090')).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(splitHostPort('[::1]:9090')).toEqual({ host: '::1', port: 9090 });
  });
});
