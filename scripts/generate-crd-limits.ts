/**
 * Writes lib/limits/crd-limits.generated.ts: the constraints (pattern, length, item count, range, enum) that the
 * real CRDs put on each field our constructs fill, read from the JSON Schemas made from those CRDs
 * (`../shared/crds/jsonschema`). The published package cannot read ../shared, so the output is committed;
 * test/limits/crd-limits.test.ts fails when it no longer matches the schemas.
 *
 *   npx tsx scripts/generate-crd-limits.ts [--crds <dir>] [--check]
 *
 * `--check` writes nothing and exits 1 when the committed file is stale.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A field our constructs fill: which schema, and where in it (`[]` steps into list items). */
interface FieldSource {
  readonly set: 'gateway-api-standard' | 'envoy-gateway';
  readonly apiVersion: string;
  readonly kind: string;
  readonly field: string;
}

const GATEWAY_API = 'gateway.networking.k8s.io';
const ENVOY_GATEWAY = 'gateway.envoyproxy.io/v1alpha1';

function gw(kind: string, field: string, version = 'v1'): FieldSource {
  return { set: 'gateway-api-standard', apiVersion: `${GATEWAY_API}/${version}`, kind, field };
}

function eg(kind: string, field: string): FieldSource {
  return { set: 'envoy-gateway', apiVersion: ENVOY_GATEWAY, kind, field };
}

/**
 * The fields our constructs fill, by the name the validators use. Only the choice of fields is written here; every
 * number and pattern comes from the schemas. A field that is missing or has no constraint fails the generator.
 */
export const FIELDS: Record<string, FieldSource> = {
  gatewayClassName: gw('Gateway', 'spec.gatewayClassName'),
  gatewayListeners: gw('Gateway', 'spec.listeners'),
  gatewayListenerHostname: gw('Gateway', 'spec.listeners[].hostname'),
  gatewayListenerPort: gw('Gateway', 'spec.listeners[].port'),
  gatewayCertificateRefs: gw('Gateway', 'spec.listeners[].tls.certificateRefs'),
  gatewayCertificateRefName: gw('Gateway', 'spec.listeners[].tls.certificateRefs[].name'),
  httpRouteHostnames: gw('HTTPRoute', 'spec.hostnames'),
  httpRouteHostname: gw('HTTPRoute', 'spec.hostnames[]'),
  httpRouteRules: gw('HTTPRoute', 'spec.rules'),
  httpRouteMatches: gw('HTTPRoute', 'spec.rules[].matches'),
  httpRoutePathValue: gw('HTTPRoute', 'spec.rules[].matches[].path.value'),
  httpRouteHeaderMatchValue: gw('HTTPRoute', 'spec.rules[].matches[].headers[].value'),
  httpRouteRequestTimeout: gw('HTTPRoute', 'spec.rules[].timeouts.request'),
  httpRouteUrlRewriteHostname: gw('HTTPRoute', 'spec.rules[].filters[].urlRewrite.hostname'),
  httpRouteHeaderRemove: gw('HTTPRoute', 'spec.rules[].filters[].requestHeaderModifier.remove'),
  referenceGrantFrom: gw('ReferenceGrant', 'spec.from', 'v1beta1'),
  backendTlsSni: eg('Backend', 'spec.tls.sni'),
  backendFqdnHostname: eg('Backend', 'spec.endpoints[].fqdn.hostname'),
  backendFqdnPort: eg('Backend', 'spec.endpoints[].fqdn.port'),
  securityPolicyJwtIssuer: eg('SecurityPolicy', 'spec.jwt.providers[].issuer'),
  securityPolicyJwtAudiences: eg('SecurityPolicy', 'spec.jwt.providers[].audiences'),
  securityPolicyJwksUri: eg('SecurityPolicy', 'spec.jwt.providers[].remoteJWKS.uri'),
  budgetRules: eg('BackendTrafficPolicy', 'spec.rateLimit.global.rules'),
  budgetSelectorHeaders: eg('BackendTrafficPolicy', 'spec.rateLimit.global.rules[].clientSelectors[].headers'),
  budgetSelectorHeaderName: eg(
    'BackendTrafficPolicy',
    'spec.rateLimit.global.rules[].clientSelectors[].headers[].name',
  ),
  budgetSelectorHeaderValue: eg(
    'BackendTrafficPolicy',
    'spec.rateLimit.global.rules[].clientSelectors[].headers[].value',
  ),
  budgetLimitRequests: eg('BackendTrafficPolicy', 'spec.rateLimit.global.rules[].limit.requests'),
  retryNumRetries: eg('BackendTrafficPolicy', 'spec.retry.numRetries'),
  retryStatusCode: eg('BackendTrafficPolicy', 'spec.retry.retryOn.httpStatusCodes[]'),
  retryPerTryTimeout: eg('BackendTrafficPolicy', 'spec.retry.perRetry.timeout'),
  extProcMessageTimeout: eg('EnvoyExtensionPolicy', 'spec.extProc[].messageTimeout'),
  extProcMaxParallelRequests: eg(
    'EnvoyExtensionPolicy',
    'spec.extProc[].backendSettings.circuitBreaker.maxParallelRequests',
  ),
  backendMaxParallelRequests: eg('BackendTrafficPolicy', 'spec.circuitBreaker.maxParallelRequests'),
  clientEarlyHeaderRemove: eg('ClientTrafficPolicy', 'spec.headers.earlyRequestHeaders.remove'),
  envoyProxyDrainTimeout: eg('EnvoyProxy', 'spec.shutdown.drainTimeout'),
};

/** The duration fields: they must share one pattern, from which the duration format is derived. */
const DURATION_FIELDS = [
  'httpRouteRequestTimeout',
  'retryPerTryTimeout',
  'extProcMessageTimeout',
  'envoyProxyDrainTimeout',
];

const CONSTRAINTS = [
  'pattern',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'enum',
] as const;

type Schema = Record<string, unknown>;

interface IndexEntry {
  readonly file: string;
  readonly group: string;
  readonly kind: string;
  readonly version: string;
}

/** The schema node of `field` (dot-separated, `[]` for list items) inside a CRD schema. */
function nodeAt(schema: Schema, field: string, where: string): Schema {
  let node = schema;
  for (const step of field.split('.')) {
    const name = step.replace(/(\[\])+$/, '');
    const properties = node.properties as Record<string, Schema> | undefined;
    if (!properties || !(name in properties)) throw new Error(`${where}: no field "${name}" (in ${field})`);
    node = properties[name];
    for (let items = (step.length - name.length) / 2; items > 0; items--) {
      if (typeof node.items !== 'object' || node.items === null)
        throw new Error(`${where}: "${name}" is not a list (in ${field})`);
      node = node.items as Schema;
    }
  }
  return node;
}

/** The Gateway API duration pattern, split into its parts (digits per unit, units, components). */
function durationFormat(pattern: string): { maxDigits: number; units: string[]; maxComponents: number } {
  const shape = /^\^\(\[0-9\]\{1,(\d+)\}\(([a-z|]+)\)\)\{1,(\d+)\}\$$/.exec(pattern);
  if (!shape)
    throw new Error(
      `the duration pattern ${pattern} no longer has the shape ^([0-9]{1,N}(units)){1,M}$; ` +
        'update scripts/generate-crd-limits.ts',
    );
  return { maxDigits: Number(shape[1]), units: shape[2].split('|'), maxComponents: Number(shape[3]) };
}

/** The text of lib/limits/crd-limits.generated.ts for the schemas in `crdsDir` (`../shared/crds`). */
export function renderCrdLimits(crdsDir: string): string {
  const jsonschemaDir = path.join(crdsDir, 'jsonschema');
  const index = JSON.parse(fs.readFileSync(path.join(jsonschemaDir, 'index.json'), 'utf8')) as IndexEntry[];
  const schemas = new Map<string, Schema>();
  const lines: string[] = [];
  const sources = new Set<string>();
  const limits: Record<string, Record<string, unknown>> = {};
  for (const [id, source] of Object.entries(FIELDS)) {
    const [group, version] = source.apiVersion.split('/');
    const entry = index.find(
      (e) =>
        e.group === group && e.version === version && e.kind === source.kind && e.file.startsWith(`${source.set}/`),
    );
    if (!entry) throw new Error(`${id}: no schema for ${source.apiVersion} ${source.kind} in ${source.set}`);
    let schema = schemas.get(entry.file);
    if (!schema)
      schemas.set(
        entry.file,
        (schema = JSON.parse(fs.readFileSync(path.join(jsonschemaDir, entry.file), 'utf8')) as Schema),
      );
    const node = nodeAt(schema, source.field, `${id} (${entry.file})`);
    const limit: Record<string, unknown> = { kind: source.kind, apiVersion: source.apiVersion, field: source.field };
    for (const key of CONSTRAINTS) if (node[key] !== undefined) limit[key] = node[key];
    if (Object.keys(limit).length === 3)
      throw new Error(`${id}: ${source.kind} ${source.field} has no constraint in ${entry.file}; drop it from FIELDS`);
    limits[id] = limit;
    sources.add(entry.file);
  }
  const patterns = new Set(DURATION_FIELDS.map((id) => limits[id].pattern));
  if (patterns.size !== 1)
    throw new Error(`the duration fields no longer share one pattern: ${[...patterns].join(', ')}`);
  const durationPattern = String([...patterns][0]);

  lines.push(
    '// Generated by scripts/generate-crd-limits.ts from the CRD JSON Schemas in ../shared/crds/jsonschema; do not ' +
      'edit.',
    '// Regenerate with `npx tsx scripts/generate-crd-limits.ts`; test/limits/crd-limits.test.ts fails when it is ' +
      'stale.',
    '// Schemas read:',
    ...[...sources].sort().map((file) => `//   ${file}`),
    "import type { CrdFieldLimit } from './crd-field';",
    '',
    '/** The constraints the CRDs put on each field our constructs fill. */',
    'export const CRD_LIMITS = {',
  );
  for (const [id, limit] of Object.entries(limits)) {
    lines.push(`  ${id}: {`, ...Object.entries(limit).map(([key, value]) => `    ${key}: ${literal(value)},`), '  },');
  }
  lines.push('} as const satisfies Record<string, CrdFieldLimit>;', '');
  const format = durationFormat(durationPattern);
  lines.push(
    '/**',
    ' * The Gateway API Duration format, shared by',
    ...DURATION_FIELDS.map((id) => ` * - ${String(limits[id].kind)} ${String(limits[id].field)}`),
    ' */',
    'export const GATEWAY_DURATION = {',
    `  pattern: ${literal(durationPattern)},`,
    `  maxDigits: ${format.maxDigits},`,
    `  units: ${literal(format.units)},`,
    `  maxComponents: ${format.maxComponents},`,
    '} as const;',
    '',
  );
  return lines.join('\n');
}

function literal(value: unknown): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  return String(value);
}

export const GENERATED_FILE = path.resolve(__dirname, '..', 'lib', 'limits', 'crd-limits.generated.ts');
export const DEFAULT_CRDS_DIR = path.resolve(__dirname, '..', '..', 'shared', 'crds');

function main(argv: readonly string[]): number {
  const at = argv.indexOf('--crds');
  const crdsDir = at >= 0 ? path.resolve(argv[at + 1]) : DEFAULT_CRDS_DIR;
  if (!fs.existsSync(path.join(crdsDir, 'jsonschema', 'index.json'))) {
    process.stderr.write(
      `no CRD JSON Schemas at ${crdsDir}/jsonschema (expected ../shared beside the checkout; pass --crds <dir>)\n`,
    );
    return 2;
  }
  const text = renderCrdLimits(crdsDir);
  const current = fs.existsSync(GENERATED_FILE) ? fs.readFileSync(GENERATED_FILE, 'utf8') : undefined;
  if (argv.includes('--check')) {
    if (current === text) return 0;
    process.stderr.write(
      `${path.relative(process.cwd(), GENERATED_FILE)} is stale; run npx tsx scripts/generate-crd-limits.ts\n`,
    );
    return 1;
  }
  if (current !== text) fs.writeFileSync(GENERATED_FILE, text);
  process.stdout.write(`${current === text ? 'unchanged' : 'wrote'} ${path.relative(process.cwd(), GENERATED_FILE)}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
