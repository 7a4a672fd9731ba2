/**
 * API key authentication as Envoy Gateway v1.9 configures Envoy's api_key_auth filter from a SecurityPolicy's
 * `apiKeyAuth`, and as Envoy runs it.
 *
 * Envoy Gateway (`internal/gatewayapi/securitypolicy.go` buildAPIKeyAuth, `internal/xds/translator/api_key_auth.go`):
 * - every `credentialRefs` Secret is read (a missing Secret, or one in another namespace without a ReferenceGrant,
 *   fails the policy: its routes answer 500); each data key is a client id and its value the API key. Client ids
 *   are taken in sorted order within a Secret; a client id already seen (in an earlier Secret) is skipped, the same
 *   key under two client ids fails the policy ("duplicated API key");
 * - `extractFrom` entries become Envoy key sources in order: each entry's headers, then params, then cookies (an
 *   entry naming two of these kinds fails the policy);
 * - `forwardClientIDHeader` and `sanitize` become the filter's `forwarding` (header, `hide_credentials`);
 * - the HCM filter is disabled and enabled per route with the whole configuration (`ApiKeyAuthPerRoute`), so a
 *   route-level policy replaces the gateway's (the policy attachment picks one SecurityPolicy per route);
 * - the filter runs at order 7, before jwt_authn (10) and ext_proc (100+).
 *
 * Envoy (`source/extensions/filters/http/api_key_auth/api_key_auth.cc`, `ApiKeyAuthFilter::decodeHeaders`):
 * - the key is the first non-empty value found over the sources in order: a header's first value with a leading
 *   `Bearer ` (exactly that, case-sensitive) removed, a query parameter's first (decoded) value, or a cookie's value;
 * - no key: 401, details `missing_api_key`; a key no credential has: 401, details `unkonwn_api_key` (Envoy's own
 *   spelling); both with the body `Client authentication failed.` (text/plain, as every local reply with a body);
 * - on success the client id is SET on the forwarding header (replacing any client value) and, with
 *   `hide_credentials`, every source is removed from the request: each source header whole, each source query
 *   parameter, each source cookie.
 *
 * The model keeps SHA-256 digests of the keys, never the keys (it is plain data that may be printed or logged); the
 * comparison is the same as Envoy's exact match.
 */
import { createHash } from 'node:crypto';
import { CONTINUE, type DecodeResult, type HeaderMap, type HttpFilter, type StreamContext } from './filter';
import type { KubeObject } from './model';
import {
  asObject,
  asString,
  namespaceOf,
  nameOf,
  optionalListField,
  optionalObjectField,
  spec,
  type ObjectIndex,
} from './objects';
import { referenceGranted } from './translate/backends';

export type ApiKeySource =
  | { readonly type: 'header'; readonly name: string }
  | { readonly type: 'query'; readonly name: string }
  | { readonly type: 'cookie'; readonly name: string };

export interface ApiKeyCredential {
  /** The client id (the Secret's data key). */
  readonly client: string;
  /** SHA-256 of the key, hex. */
  readonly keySha256: string;
}

export interface ApiKeyAuthSettings {
  /** `securitypolicy/<ns>/<name>`. */
  readonly name: string;
  readonly credentials: ApiKeyCredential[];
  readonly keySources: ApiKeySource[];
  /** `forwardClientIDHeader` (lower-case); undefined = the client id is not forwarded. */
  readonly forwardClientIdHeader?: string;
  /** `sanitize`: remove the key from the request once authenticated. */
  readonly sanitize: boolean;
}

/** The body Envoy's api_key_auth answers a 401 with. */
export const API_KEY_AUTH_DENIED_BODY = 'Client authentication failed.';

/** Why a SecurityPolicy's `apiKeyAuth` cannot be built; Envoy Gateway then answers 500 on the policy's routes. */
export class ApiKeyAuthPolicyError extends Error {}

function sha256(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** The data of a Secret as the API server stores it: `data` (base64) with `stringData` merged over it. */
function secretData(secret: KubeObject): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const data = asObject(secret.data) ?? {};
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === 'string') out.set(key, Buffer.from(value, 'base64'));
  }
  const stringData = asObject(secret.stringData) ?? {};
  for (const [key, value] of Object.entries(stringData)) {
    if (typeof value === 'string') out.set(key, Buffer.from(value, 'utf8'));
  }
  return out;
}

/** Go's sort.Strings order (bytewise on UTF-8). */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The api_key_auth settings of a SecurityPolicy (undefined when it has no `apiKeyAuth`). Throws
 * `ApiKeyAuthPolicyError` for what makes Envoy Gateway reject the policy.
 */
export function apiKeyAuthSettingsFromPolicy(policy: KubeObject, index: ObjectIndex): ApiKeyAuthSettings | undefined {
  const namespace = namespaceOf(policy);
  const name = nameOf(policy);
  const where = `SecurityPolicy ${namespace}/${name}`;
  const apiKeyAuth = optionalObjectField(spec(policy).apiKeyAuth, `${where}: spec.apiKeyAuth`);
  if (!apiKeyAuth) return undefined;

  const keySources: ApiKeySource[] = [];
  optionalListField(apiKeyAuth.extractFrom, `${where}: spec.apiKeyAuth.extractFrom`).forEach((raw, i) => {
    const entry = optionalObjectField(raw, `${where}: spec.apiKeyAuth.extractFrom[${i}]`) ?? {};
    const list = (field: string) =>
      optionalListField(entry[field], `${where}: spec.apiKeyAuth.extractFrom[${i}].${field}`).map(String);
    const headers = list('headers');
    const params = list('params');
    const cookies = list('cookies');
    if ([headers, params, cookies].filter((l) => l.length > 0).length > 1) {
      throw new ApiKeyAuthPolicyError(
        `${where}: spec.apiKeyAuth.extractFrom[${i}]: only one of headers, params or cookies must be specified`,
      );
    }
    for (const header of headers) keySources.push({ type: 'header', name: header.toLowerCase() });
    for (const param of params) keySources.push({ type: 'query', name: param });
    for (const cookie of cookies) keySources.push({ type: 'cookie', name: cookie });
  });

  const credentials: ApiKeyCredential[] = [];
  const seenClients = new Set<string>();
  const seenKeys = new Set<string>();
  optionalListField(apiKeyAuth.credentialRefs, `${where}: spec.apiKeyAuth.credentialRefs`).forEach((raw, i) => {
    const ref = optionalObjectField(raw, `${where}: spec.apiKeyAuth.credentialRefs[${i}]`) ?? {};
    const refName = asString(ref.name);
    const refNamespace = asString(ref.namespace) ?? namespace;
    const kind = asString(ref.kind) ?? 'Secret';
    const group = asString(ref.group) ?? '';
    if (!refName || kind !== 'Secret' || group !== '') {
      throw new ApiKeyAuthPolicyError(`${where}: spec.apiKeyAuth.credentialRefs[${i}] must name a core Secret`);
    }
    const from = { group: 'gateway.envoyproxy.io', kind: 'SecurityPolicy', namespace };
    if (!referenceGranted(index, from, { group: '', kind: 'Secret', namespace: refNamespace, name: refName })) {
      throw new ApiKeyAuthPolicyError(
        `${where}: Secret ${refNamespace}/${refName} is in another namespace and no ReferenceGrant allows it`,
      );
    }
    const secret = index.get('Secret', refNamespace, refName);
    if (!secret) throw new ApiKeyAuthPolicyError(`${where}: Secret ${refNamespace}/${refName} does not exist`);
    const data = secretData(secret);
    for (const client of [...data.keys()].sort(compareBytes)) {
      if (seenClients.has(client)) continue;
      const digest = sha256(data.get(client)!);
      // Never the key itself in a message.
      if (seenKeys.has(digest)) throw new ApiKeyAuthPolicyError(`${where}: duplicated API key (client id ${client})`);
      seenKeys.add(digest);
      seenClients.add(client);
      credentials.push({ client, keySha256: digest });
    }
  });

  const header = asString(apiKeyAuth.forwardClientIDHeader);
  return {
    name: `securitypolicy/${namespace}/${name}`,
    credentials,
    keySources,
    ...(header ? { forwardClientIdHeader: header.toLowerCase() } : {}),
    sanitize: apiKeyAuth.sanitize === true,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The filter

function splitPath(path: string): { base: string; query: string | undefined } {
  const at = path.indexOf('?');
  return at < 0 ? { base: path, query: undefined } : { base: path.slice(0, at), query: path.slice(at + 1) };
}

function decodeQueryComponent(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

/** Envoy `parseAndDecodeQueryString`: the first value of a parameter, decoded; undefined when absent. */
function queryValue(path: string, name: string): string | undefined {
  const { query } = splitPath(path);
  if (query === undefined) return undefined;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = decodeQueryComponent(eq < 0 ? part : part.slice(0, eq));
    if (key === name) return decodeQueryComponent(eq < 0 ? '' : part.slice(eq + 1));
  }
  return undefined;
}

/** Envoy `Utility::parseCookieValue`: the first cookie of that name over the cookie headers, quotes removed. */
function cookieValue(headers: HeaderMap, name: string): string {
  for (const header of headers.getAll('cookie')) {
    for (const part of header.split(';')) {
      const trimmed = part.trim();
      const eq = trimmed.indexOf('=');
      if (eq < 0 || trimmed.slice(0, eq) !== name) continue;
      const value = trimmed.slice(eq + 1);
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    }
  }
  return '';
}

/** The key one source finds (empty when none), as Envoy's `KeySources::Source::getKey`. */
function keyFrom(source: ApiKeySource, headers: HeaderMap): string {
  switch (source.type) {
    case 'header': {
      const value = headers.get(source.name);
      if (value === undefined) return '';
      return value.startsWith('Bearer ') ? value.slice('Bearer '.length) : value;
    }
    case 'query':
      return queryValue(headers.get(':path') ?? '/', source.name) ?? '';
    case 'cookie':
      return cookieValue(headers, source.name);
  }
}

/** Removes one source from the request (`hide_credentials`). */
function removeKey(source: ApiKeySource, headers: HeaderMap): void {
  switch (source.type) {
    case 'header':
      headers.remove(source.name);
      return;
    case 'query': {
      const { base, query } = splitPath(headers.get(':path') ?? '/');
      if (query === undefined) return;
      const kept = query.split('&').filter((part) => {
        const eq = part.indexOf('=');
        return decodeQueryComponent(eq < 0 ? part : part.slice(0, eq)) !== source.name;
      });
      headers.set(':path', kept.length > 0 ? `${base}?${kept.join('&')}` : base);
      return;
    }
    case 'cookie': {
      const values = headers.getAll('cookie');
      headers.remove('cookie');
      for (const header of values) {
        const kept = header
          .split(';')
          .map((part) => part.trim())
          .filter((part) => part !== '' && part.slice(0, part.indexOf('=')) !== source.name);
        if (kept.length > 0) headers.add('cookie', kept.join('; '));
      }
      return;
    }
  }
}

function denied(details: string): DecodeResult {
  return {
    action: 'localReply',
    reply: { status: 401, body: API_KEY_AUTH_DENIED_BODY, details },
  };
}

/**
 * Envoy's api_key_auth filter with a route's configuration. With `settings` the configuration applies to every
 * request; without, the filter uses the `apiKeyAuth` of the route matched when the request arrives.
 */
export function createApiKeyAuthFilter(settings?: ApiKeyAuthSettings): HttpFilter {
  // Digest -> client id, built once per configuration.
  const tables = new WeakMap<ApiKeyAuthSettings, Map<string, string>>();
  const tableOf = (config: ApiKeyAuthSettings) => {
    let table = tables.get(config);
    if (!table) {
      table = new Map(config.credentials.map((c) => [c.keySha256, c.client]));
      tables.set(config, table);
    }
    return table;
  };
  return {
    name: 'envoy.filters.http.api_key_auth',
    decodeHeaders(stream: StreamContext): DecodeResult {
      const config = settings ?? (stream.route() as { apiKeyAuth?: ApiKeyAuthSettings } | undefined)?.apiKeyAuth;
      if (!config) return CONTINUE;
      if (config.keySources.length === 0) return denied('missing_key_sources');
      const headers = stream.requestHeaders;
      let key = '';
      for (const source of config.keySources) {
        key = keyFrom(source, headers);
        if (key !== '') break;
      }
      if (key === '') return denied('missing_api_key');
      const client = tableOf(config).get(sha256(key));
      if (client === undefined) return denied('unkonwn_api_key');
      if (config.forwardClientIdHeader) headers.set(config.forwardClientIdHeader, client);
      if (config.sanitize) for (const source of config.keySources) removeKey(source, headers);
      return CONTINUE;
    },
  };
}
