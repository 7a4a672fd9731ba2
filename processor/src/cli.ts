/** Command-line flags and their environment equivalents. Pure: argv and env in, options out. */
import type { HttpEgressOptions } from './fallback';
import type { TracingOptions } from './tracing';

export interface CliOptions {
  config: string;
  secretsDir: string | undefined;
  listen: string;
  admin: string;
  logLevel: string;
  drainTimeoutMs: number;
  shutdownDelayMs: number;
  streamIdleTimeoutMs: number;
  pollIntervalMs: number;
  /** Request tracing; undefined (the default): off. */
  tracing: TracingOptions | undefined;
  /** How fallback attempts are sent: development overrides of backends' addresses; undefined: none. */
  egress: HttpEgressOptions | undefined;
}

export class CliError extends Error {}

type FlagKey =
  | Exclude<keyof CliOptions, 'tracing' | 'egress'>
  | 'devUpstreams'
  | 'otlpEndpoint'
  | 'otlpServiceName'
  | 'traceSamplingRatio'
  | 'traceContentBytes';

interface FlagSpec {
  flag: string;
  env: string;
  key: FlagKey;
  numeric?: boolean;
}

const FLAGS: FlagSpec[] = [
  { flag: '--config', env: 'AI_GATEWAY_CONFIG', key: 'config' },
  { flag: '--secrets-dir', env: 'AI_GATEWAY_SECRETS_DIR', key: 'secretsDir' },
  { flag: '--listen', env: 'AI_GATEWAY_LISTEN', key: 'listen' },
  { flag: '--admin', env: 'AI_GATEWAY_ADMIN', key: 'admin' },
  { flag: '--log-level', env: 'AI_GATEWAY_LOG_LEVEL', key: 'logLevel' },
  { flag: '--drain-timeout-ms', env: 'AI_GATEWAY_DRAIN_TIMEOUT_MS', key: 'drainTimeoutMs', numeric: true },
  { flag: '--shutdown-delay-ms', env: 'AI_GATEWAY_SHUTDOWN_DELAY_MS', key: 'shutdownDelayMs', numeric: true },
  {
    flag: '--stream-idle-timeout-ms',
    env: 'AI_GATEWAY_STREAM_IDLE_TIMEOUT_MS',
    key: 'streamIdleTimeoutMs',
    numeric: true,
  },
  { flag: '--poll-interval-ms', env: 'AI_GATEWAY_POLL_INTERVAL_MS', key: 'pollIntervalMs', numeric: true },
  { flag: '--otlp-endpoint', env: 'AI_GATEWAY_OTLP_ENDPOINT', key: 'otlpEndpoint' },
  { flag: '--otlp-service-name', env: 'AI_GATEWAY_OTLP_SERVICE_NAME', key: 'otlpServiceName' },
  { flag: '--trace-sampling-ratio', env: 'AI_GATEWAY_TRACE_SAMPLING_RATIO', key: 'traceSamplingRatio' },
  {
    flag: '--trace-content-bytes',
    env: 'AI_GATEWAY_TRACE_CONTENT_BYTES',
    key: 'traceContentBytes',
    numeric: true,
  },
  { flag: '--dev-upstreams', env: 'AI_GATEWAY_DEV_UPSTREAMS', key: 'devUpstreams' },
];

/** The most prompt or completion bytes a span may carry (each), whatever the flag asks. */
export const MAX_TRACE_CONTENT_BYTES = 64 * 1024;
export const DEFAULT_OTLP_SERVICE_NAME = 'ai-gateway-processor';

export const USAGE = `Usage: ai-gateway-processor [options]

  --config <file>          processor config.json
                           (AI_GATEWAY_CONFIG, default /etc/ai-gateway/config/config.json)
  --secrets-dir <dir>      credentials at <dir>/<secret>/<key> (AI_GATEWAY_SECRETS_DIR, default /etc/ai-gateway/secrets)
  --listen <addr>          ext_proc gRPC: host:port or unix:/path (AI_GATEWAY_LISTEN, default 0.0.0.0:9002)
  --admin <host:port>      /healthz, /readyz, /metrics        (AI_GATEWAY_ADMIN, default 0.0.0.0:9090)
  --log-level <level>      fatal|error|warn|info|debug        (AI_GATEWAY_LOG_LEVEL, default info)
  --shutdown-delay-ms <n>  on SIGTERM, keep serving this long (AI_GATEWAY_SHUTDOWN_DELAY_MS, default 0):
                           readiness is 503 at once, new streams are still accepted; then the drain
  --drain-timeout-ms <n>   how long in-flight streams may run  (AI_GATEWAY_DRAIN_TIMEOUT_MS, default 25000)
                           after the delay; exits as soon as all are done
  --stream-idle-timeout-ms <n>
                           close a stream with no message for  (AI_GATEWAY_STREAM_IDLE_TIMEOUT_MS, default 300000)
                           this long (0: never); while draining, a stream stuck for 5 s with a message
                           unanswered or answers unread is closed too
  --poll-interval-ms <n>   config/secret change polling       (AI_GATEWAY_POLL_INTERVAL_MS, default 2000)

Development (the local data plane):
  --dev-upstreams <backend>=<url>[,...]
                           send the processor's own fallback attempts to <backend> (a config backend name) to a
                           local http(s)://host:port instead of its endpoint (AI_GATEWAY_DEV_UPSTREAMS); https is
                           verified against the system CAs plus NODE_EXTRA_CA_CERTS

Tracing (off unless --otlp-endpoint is set):
  --otlp-endpoint <url>    OTLP/HTTP collector, spans in protobuf: http(s)://host:port sends to /v1/traces; a URL
                           with a path is used as it is       (AI_GATEWAY_OTLP_ENDPOINT)
  --otlp-service-name <s>  service.name of the spans
                                     (AI_GATEWAY_OTLP_SERVICE_NAME, default ai-gateway-processor)
  --trace-sampling-ratio <r>
                           share of new traces sampled, 0..1; a traceparent's sampled flag decides for its trace
                                                              (AI_GATEWAY_TRACE_SAMPLING_RATIO, default 1)
  --trace-content-bytes <n>
                           record prompts and completions, cut at n bytes each (at most 65536)
                                                              (AI_GATEWAY_TRACE_CONTENT_BYTES, default 0: never)
`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function parseCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliOptions | 'help' {
  const values: Record<string, string> = {};
  for (const spec of FLAGS) {
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') values[spec.key] = fromEnv;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return 'help';
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const spec = FLAGS.find((f) => f.flag === name);
    if (!spec) throw new CliError(`unknown option ${JSON.stringify(arg)}`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw new CliError(`${spec.flag} needs a value`);
    values[spec.key] = value;
  }
  const number = (key: FlagKey, fallback: number, zero: 'zero allowed' | 'positive' = 'positive'): number => {
    const raw = values[key];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    const spec = FLAGS.find((f) => f.key === key)!;
    const min = zero === 'zero allowed' ? 0 : 1;
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new CliError(
        `${spec.flag} must be a ${min === 0 ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(raw)}`,
      );
    }
    return n;
  };
  const listen = values.listen ?? '0.0.0.0:9002';
  if (!listen.startsWith('unix:') && !/^.+:\d+$/.test(listen)) {
    throw new CliError(`--listen must be host:port or unix:/path, got ${JSON.stringify(listen)}`);
  }
  const admin = values.admin ?? '0.0.0.0:9090';
  if (!/^.+:\d+$/.test(admin)) throw new CliError(`--admin must be host:port, got ${JSON.stringify(admin)}`);
  const logLevel = values.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  return {
    config: values.config ?? '/etc/ai-gateway/config/config.json',
    secretsDir: values.secretsDir ?? '/etc/ai-gateway/secrets',
    listen,
    admin,
    logLevel,
    drainTimeoutMs: number('drainTimeoutMs', 25000),
    shutdownDelayMs: number('shutdownDelayMs', 0, 'zero allowed'),
    streamIdleTimeoutMs: number('streamIdleTimeoutMs', 300000, 'zero allowed'),
    pollIntervalMs: number('pollIntervalMs', 2000),
    tracing: tracingOptions(values, number('traceContentBytes', 0, 'zero allowed')),
    egress: values.devUpstreams === undefined ? undefined : { devUpstreams: devUpstreams(values.devUpstreams) },
  };
}

function tracingOptions(values: Record<string, string>, contentMaxBytes: number): TracingOptions | undefined {
  const endpoint = values.otlpEndpoint;
  const others = ['otlpServiceName', 'traceSamplingRatio', 'traceContentBytes'].filter((k) => k in values);
  if (endpoint === undefined) {
    if (others.length > 0) {
      const spec = FLAGS.find((f) => f.key === others[0])!;
      throw new CliError(`${spec.flag} needs --otlp-endpoint (tracing is off without it)`);
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new CliError(`--otlp-endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliError(`--otlp-endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  if (url.username !== '' || url.password !== '') throw new CliError('--otlp-endpoint must not carry credentials');
  // As OTEL_EXPORTER_OTLP_ENDPOINT: a bare collector address gets the traces path; a URL with a path is the full one.
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  const rawRatio = values.traceSamplingRatio;
  const ratio = rawRatio === undefined ? 1 : Number(rawRatio);
  if (rawRatio !== undefined && (!/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(rawRatio) || ratio > 1)) {
    throw new CliError(`--trace-sampling-ratio must be a number from 0 to 1, got ${JSON.stringify(rawRatio)}`);
  }
  if (contentMaxBytes > MAX_TRACE_CONTENT_BYTES) {
    const got = JSON.stringify(values.traceContentBytes);
    throw new CliError(`--trace-content-bytes must be at most ${MAX_TRACE_CONTENT_BYTES}, got ${got}`);
  }
  const serviceName = values.otlpServiceName ?? DEFAULT_OTLP_SERVICE_NAME;
  return { endpoint: url.toString(), serviceName, samplingRatio: ratio, contentMaxBytes };
}

/** The most backends `--dev-upstreams` may name. */
const MAX_DEV_UPSTREAMS = 1024;

/** `--dev-upstreams <backend>=<url>[,...]`: where fallback attempts to each backend go in development. */
function devUpstreams(raw: string): Map<string, URL> {
  const upstreams = new Map<string, URL>();
  const entries = raw.split(',').filter((entry) => entry.trim() !== '');
  if (entries.length > MAX_DEV_UPSTREAMS)
    throw new CliError(`--dev-upstreams names more than ${MAX_DEV_UPSTREAMS} backends`);
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const backend = entry.slice(0, eq).trim();
    let url: URL | undefined;
    try {
      url = eq > 0 ? new URL(entry.slice(eq + 1).trim()) : undefined;
    } catch {
      url = undefined;
    }
    if (backend === '' || !url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/') {
      throw new CliError(
        `--dev-upstreams entries must be <backend>=<http(s)://host:port>, got ${JSON.stringify(entry.slice(0, 200))}`,
      );
    }
    if (upstreams.has(backend)) throw new CliError(`--dev-upstreams names backend ${JSON.stringify(backend)} twice`);
    upstreams.set(backend, url);
  }
  return upstreams;
}

/** `host:port` to its parts; IPv6 hosts in brackets. */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}
