/**
 * The command line of `ai-gateway dev` (lib/cli.ts), kept pure: argv in, options out, and the checks of those
 * options against the translated manifests. Errors are messages for the user.
 */
import { METADATA_NAMESPACE, TOKEN_METADATA_KEYS } from '@ai-gateway-constructs/processor-config';
import type { AccessLogEntry } from './filter-manager';
import type { DataPlaneModel, KubeObject, RouteModel } from './model';

export const USAGE = `Usage: ai-gateway dev <dir|file...> [options]

Runs the synthesized manifests locally, the way Envoy Gateway runs them (for development, tests and CI;
production is Envoy Gateway). Reads each file given and the .yaml/.yml/.json files of each folder given
(e.g. dist/; files there without any Kubernetes object, such as Helm values, are skipped).

Options:
  --secrets <dir>            Secret keys as files: <dir>/<namespace>/<secret>/<key> or <dir>/<secret>/<key>.
                             Without a file, a key is read from the environment variable
                             AI_GATEWAY_SECRET_<SECRET>_<KEY> (upper-case, other characters as "_").
                             The processors also inherit this environment, e.g. AWS_* or
                             GOOGLE_APPLICATION_CREDENTIALS for credentials from the default chains.
  --backend <ns>/<name>=<url>
                             Send the traffic of Backend or Service <ns>/<name> to <url> (http:// or https://,
                             e.g. a local fake provider). Repeatable.
  --echo                     Every backend answers with JSON naming the backend, namespace, path and headers
                             it received, instead of forwarding (Gateway API's conformance echo server).
  --redis <url>              Count rate limits in this Redis (redis:// or rediss://), with the fixed windows of
                             Envoy's ratelimit service. Default: in memory.
  --port <ns>/<gateway>:<listenerPort>=<localPort>
                             Serve that Gateway listener port on <localPort>. Repeatable. Default: a free port.
  --jwks <jwksUri>=<url|file>
                             Read the keys of a SecurityPolicy's remote JWKS (as written in the manifests) from
                             a local URL or JSON file instead. Repeatable.
  --ca-file <pem>            Also trust these CA certificates for https:// upstreams (e.g. a local fake
                             provider with a test certificate). Repeatable.
  --host <address>           Address the listeners bind (default 127.0.0.1).
  --processor-log <file>     Append the processors' output to <file> instead of stderr.
  --processor <file>         Run this processor entry script instead of the bundled processor.
  -h, --help                 Show this help.

Each gateway listener's local URL is printed once it serves. Stop with Ctrl-C (SIGINT) or SIGTERM.
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface DevOptions {
  readonly paths: string[];
  readonly secretsDir?: string;
  /** `<ns>/<name>` of a Backend or Service -> base URL. */
  readonly backendOverrides: Record<string, string>;
  readonly echo: boolean;
  readonly redisUrl?: string;
  /** `<ns>/<gateway>:<listenerPort>` -> local port. */
  readonly ports: Record<string, number>;
  readonly host: string;
  readonly processorLog?: string;
  readonly processorEntry?: string;
  /** Remote JWKS URI as written in a SecurityPolicy -> local URL or file. */
  readonly jwksOverrides: Record<string, string>;
  /** PEM files of extra CAs for https:// upstreams. */
  readonly caFiles: string[];
}

export type Command = { readonly command: 'help' } | { readonly command: 'dev'; readonly options: DevOptions };

const VALUE_FLAGS = [
  '--secrets',
  '--backend',
  '--redis',
  '--port',
  '--host',
  '--processor-log',
  '--processor',
  '--jwks',
  '--ca-file',
] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535)
    throw new UsageError(`${what} must be a port from 1 to 65535, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseNamespacedName(text: string, flag: string, example: string): string {
  const [namespace, name, ...rest] = text.split('/');
  if (rest.length > 0 || !namespace || !name || !NAME.test(namespace) || !NAME.test(name)) {
    throw new UsageError(`${flag} needs <namespace>/<name> before "=", e.g. ${example}; got ${JSON.stringify(text)}`);
  }
  return `${namespace}/${name}`;
}

function parseBackend(value: string): [string, string] {
  const example = 'ai-platform/openai=http://127.0.0.1:8080';
  const eq = value.indexOf('=');
  if (eq < 0)
    throw new UsageError(`--backend needs <namespace>/<name>=<url>, e.g. ${example}; got ${JSON.stringify(value)}`);
  const key = parseNamespacedName(value.slice(0, eq), '--backend', example);
  const raw = value.slice(eq + 1);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--backend ${key}: ${JSON.stringify(raw)} is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new UsageError(
      `--backend ${key}: the URL must be http:// or https:// with a host, got ${JSON.stringify(raw)}`,
    );
  }
  if (
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new UsageError(
      `--backend ${key}: the URL names where to connect (scheme, host, port) and cannot carry a ` +
        `path, query or credentials, got ${JSON.stringify(raw)}`,
    );
  }
  return [key, `${url.protocol}//${url.host}`];
}

function parsePortMapping(value: string): [string, number] {
  const match = /^([^:=]+):([^=]+)=(.+)$/.exec(value);
  const example = 'ai-platform/ai-gateway:80=8080';
  if (!match)
    throw new UsageError(
      `--port needs <namespace>/<gateway>:<listenerPort>=<localPort>, e.g. ${example}; got ${JSON.stringify(value)}`,
    );
  const gateway = parseNamespacedName(match[1], '--port', example);
  const listenerPort = parsePort(match[2], `--port ${gateway}: the listener port`);
  return [`${gateway}:${listenerPort}`, parsePort(match[3], `--port ${gateway}:${listenerPort}: the local port`)];
}

function parseJwks(value: string): [string, string] {
  const example = 'https://issuer.example.com/.well-known/jwks.json=./jwks.json';
  const eq = value.indexOf('=');
  if (eq < 0) throw new UsageError(`--jwks needs <jwksUri>=<url|file>, e.g. ${example}; got ${JSON.stringify(value)}`);
  const uri = value.slice(0, eq);
  const target = value.slice(eq + 1);
  let parsed: URL | undefined;
  try {
    parsed = new URL(uri);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new UsageError(
      `--jwks: ${JSON.stringify(uri)} is not the http(s) JWKS URI of a SecurityPolicy (e.g. ${example})`,
    );
  }
  if (target === '') throw new UsageError(`--jwks ${uri}: name a local URL or file after "="`);
  return [uri, target];
}

/** Parses the command line after the program name. Pure: throws `UsageError` with a message for the user. */
export function parseCommandLine(argv: readonly string[]): Command {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') return { command: 'help' };
  const [command, ...rest] = argv;
  if (command !== 'dev') throw new UsageError(`unknown command ${JSON.stringify(command)}; the command is "dev"`);

  const paths: string[] = [];
  const backendOverrides: Record<string, string> = {};
  const ports: Record<string, number> = {};
  const jwksOverrides: Record<string, string> = {};
  const caFiles: string[] = [];
  const single: Partial<Record<ValueFlag, string>> = {};
  let echo = false;
  let onlyPaths = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (onlyPaths || !arg.startsWith('-') || arg === '-') {
      paths.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPaths = true;
      continue;
    }
    if (arg === '--help' || arg === '-h') return { command: 'help' };
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    if (flag === '--echo') {
      if (eq >= 0) throw new UsageError('--echo takes no value');
      echo = true;
      continue;
    }
    if (!(VALUE_FLAGS as readonly string[]).includes(flag))
      throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
    const value = eq < 0 ? rest[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
    if (flag === '--backend') {
      const [key, url] = parseBackend(value);
      if (key in backendOverrides) throw new UsageError(`--backend ${key} is given twice`);
      backendOverrides[key] = url;
    } else if (flag === '--port') {
      const [key, port] = parsePortMapping(value);
      if (key in ports) throw new UsageError(`--port ${key} is given twice`);
      if (Object.values(ports).includes(port))
        throw new UsageError(`--port: local port ${port} is given to two listeners`);
      ports[key] = port;
    } else if (flag === '--jwks') {
      const [uri, target] = parseJwks(value);
      if (uri in jwksOverrides) throw new UsageError(`--jwks ${uri} is given twice`);
      jwksOverrides[uri] = target;
    } else if (flag === '--ca-file') {
      caFiles.push(value);
    } else {
      if (single[flag as ValueFlag] !== undefined) throw new UsageError(`${flag} is given twice`);
      single[flag as ValueFlag] = value;
    }
  }
  if (paths.length === 0) throw new UsageError('name the manifests to run: a folder (e.g. dist/) or YAML files');
  const redisUrl = single['--redis'];
  if (redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redisUrl))
    throw new UsageError(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(redisUrl)}`);
  return {
    command: 'dev',
    options: {
      paths,
      secretsDir: single['--secrets'],
      backendOverrides,
      echo,
      redisUrl,
      ports,
      host: single['--host'] ?? '127.0.0.1',
      processorLog: single['--processor-log'],
      processorEntry: single['--processor'],
      jwksOverrides,
      caFiles,
    },
  };
}

/** Checks the options against the manifests: every override and port names something that exists. */
export function checkAgainstManifests(
  options: DevOptions,
  objects: readonly KubeObject[],
  model: DataPlaneModel,
): void {
  if (model.gateways.length === 0) {
    throw new Error(
      `the manifests in ${options.paths.join(', ')} contain no Gateway ` +
        `(gateway.networking.k8s.io); synthesize an AIGateway first`,
    );
  }
  const objectNames = new Set(
    objects
      .filter((o) => o.kind === 'Backend' || o.kind === 'Service')
      .map((o) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`),
  );
  for (const key of Object.keys(options.backendOverrides)) {
    if (!objectNames.has(key)) throw new Error(`--backend ${key}: the manifests contain no Backend or Service ${key}`);
  }
  const listenerPorts = new Set(
    model.gateways.flatMap((g) => g.listeners.map((l) => `${g.namespace}/${g.name}:${l.port}`)),
  );
  for (const key of Object.keys(options.ports)) {
    if (!listenerPorts.has(key)) {
      throw new Error(
        `--port ${key}: no Gateway listener has that port; the listeners are ${[...listenerPorts].sort().join(', ')}`,
      );
    }
  }
}

/** One line per Gateway listener: its name, hostname and local URL. */
export function listenerLines(
  model: DataPlaneModel,
  address: (namespace: string, name: string, port: number) => string,
): string[] {
  const lines: string[] = [];
  for (const gateway of model.gateways) {
    for (const listener of gateway.listeners) {
      const url = address(gateway.namespace, gateway.name, listener.port);
      const notes = [
        ...(listener.hostname ? [`send Host: ${listener.hostname.replace(/^\*\./, 'anything.')}`] : []),
        ...(listener.protocol === 'HTTPS' ? ['plain HTTP locally'] : []),
      ];
      lines.push(
        `  Gateway ${gateway.namespace}/${gateway.name} listener ${listener.sectionName} ` +
          `(${listener.protocol} ${listener.port}): ` +
          `${url}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
      );
    }
  }
  return lines;
}

/**
 * One access log line per request, close to Envoy's default format: time, method and path (without the query,
 * which clients use for keys), status (`-` when the stream was reset before a response head), response flags,
 * response code details, duration, the route the request ended on and the tokens the processor counted.
 */
export function accessLogLine(entry: AccessLogEntry<RouteModel>): string {
  const path = entry.path.split('?')[0];
  const flags = entry.responseFlags.length > 0 ? entry.responseFlags.join(',') : '-';
  const usage = entry.dynamicMetadata.get(METADATA_NAMESPACE);
  const input = usage?.[TOKEN_METADATA_KEYS.input];
  const output = usage?.[TOKEN_METADATA_KEYS.output];
  const tokens = typeof input === 'number' && typeof output === 'number' ? ` tokens=${input}/${output}` : '';
  return (
    `[${entry.startTime.toISOString()}] "${entry.method} ${path}" ${entry.status ?? '-'} ` +
    `${flags} ${entry.responseCodeDetails ?? '-'} ` +
    `${Math.round(entry.durationMs)}ms route=${entry.route?.name ?? '-'}${tokens}`
  );
}
