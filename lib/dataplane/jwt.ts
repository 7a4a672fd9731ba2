/**
 * JWT authentication as Envoy Gateway v1.9 configures Envoy's jwt_authn filter from a SecurityPolicy:
 * each provider has `forward: true` (the token stays on the request), its issuer and audiences, remote JWKS (or
 * inline local JWKS), `claim_to_headers`, and the token read from `Authorization: Bearer` and the `access_token`
 * query parameter unless `extractFrom` says otherwise. Several providers are OR-ed (`requires_any`); `optional`
 * allows a missing token, `failOpen` a missing or invalid one.
 *
 * Envoy behaviour modelled: claim headers are removed from the request before verification (so a client cannot
 * pre-set them) and then appended from the claims; failures answer 401 with `www-authenticate: Bearer
 * realm="<uri>"` (plus `, error="invalid_token"` unless the token is missing) and the status text as body, or 403
 * when only the audience is wrong; `exp`/`nbf` are checked with 60 s of clock skew.
 *
 * Differences: a remote JWKS is fetched on first use (Envoy Gateway asks Envoy to fetch it when the listener
 * starts) and cached by jose for 10 minutes like Envoy's default `cache_duration`, but jose also refetches early
 * (at most every 30 s) when a token names an unknown key id, where Envoy waits for the cache to expire.
 */
import * as fs from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from 'jose';
import { CONTINUE, type DecodeResult, type HeaderMap, type HttpFilter, type StreamContext } from './filter';
import { optionalListField, optionalObjectField, policySpec, type PolicyObject } from './objects';

export interface JwtClaimToHeader {
  readonly claim: string;
  readonly header: string;
}

export interface JwtProviderSettings {
  readonly name: string;
  readonly issuer?: string;
  readonly audiences?: string[];
  /** `remoteJWKS.uri`; resolved by the JwksResolver (which may point it at a local URL or file). */
  readonly remoteJwksUri?: string;
  /** Inline JWKS JSON (`localJWKS` of type Inline). */
  readonly localJwks?: string;
  readonly claimToHeaders: JwtClaimToHeader[];
  /** Where the token is read; undefined = `Authorization: Bearer <token>` and the `access_token` query parameter. */
  readonly extractFrom?: {
    readonly headers: { readonly name: string; readonly valuePrefix?: string }[];
    readonly params: string[];
    readonly cookies: string[];
  };
  /** EG `recomputeRoute`: clear the route cache when a claim header was added. */
  readonly recomputeRoute?: boolean;
}

export interface JwtSettings {
  /** `securitypolicy/<ns>/<name>` (EG's IR config name). */
  readonly name: string;
  readonly providers: JwtProviderSettings[];
  /** SecurityPolicy `jwt.optional`: a request without a token passes; an invalid one is still rejected. */
  readonly allowMissing: boolean;
  /** SecurityPolicy `jwt.failOpen`: missing or invalid tokens pass. */
  readonly allowMissingOrFailed: boolean;
}

/** The JWT settings of a SecurityPolicy (undefined when it has no `jwt`). Throws on what EG rejects. */
export function jwtSettingsFromPolicy(policy: PolicyObject): JwtSettings | undefined {
  const { namespace, name, where, spec } = policySpec(policy, 'SecurityPolicy');
  const jwt = optionalObjectField(spec.jwt, `${where}: spec.jwt`);
  if (!jwt) return undefined;
  const providers = jwt.providers;
  if (!Array.isArray(providers) || providers.length === 0 || providers.length > 4)
    throw new Error(`${where}: spec.jwt.providers must list 1 to 4 providers`);
  const names = new Set<string>();
  const built = providers.map((raw, i) => {
    const at = `${where}: spec.jwt.providers[${i}]`;
    const p = optionalObjectField(raw, at) ?? {};
    if (typeof p.name !== 'string' || p.name.length === 0) throw new Error(`${at}.name is required`);
    if (names.has(p.name)) throw new Error(`${at}.name ${JSON.stringify(p.name)} is used twice`);
    names.add(p.name);
    const remote = optionalObjectField(p.remoteJWKS, `${at}.remoteJWKS`);
    const local = optionalObjectField(p.localJWKS, `${at}.localJWKS`);
    if ((remote === undefined) === (local === undefined))
      throw new Error(`${at}: exactly one of remoteJWKS or localJWKS must be set`);
    let localJwks: string | undefined;
    if (local) {
      if (local.type !== undefined && local.type !== 'Inline')
        throw new Error(`${at}.localJWKS: only type Inline is modelled (ConfigMap value refs are not)`);
      if (typeof local.inline !== 'string') throw new Error(`${at}.localJWKS.inline must be a JWKS JSON string`);
      localJwks = local.inline;
    }
    if (remote && (typeof remote.uri !== 'string' || remote.uri.length === 0))
      throw new Error(`${at}.remoteJWKS.uri is required`);
    const claimToHeaders = optionalListField(p.claimToHeaders, `${at}.claimToHeaders`).map((c, j) => {
      const entry = optionalObjectField(c, `${at}.claimToHeaders[${j}]`) ?? {};
      if (
        typeof entry.claim !== 'string' ||
        typeof entry.header !== 'string' ||
        entry.claim === '' ||
        entry.header === ''
      ) {
        throw new Error(`${at}.claimToHeaders[${j}] needs a claim and a header`);
      }
      return { claim: entry.claim, header: entry.header.toLowerCase() };
    });
    const extract = optionalObjectField(p.extractFrom, `${at}.extractFrom`);
    const audiences = optionalListField(p.audiences, `${at}.audiences`).map(String);
    return {
      name: p.name,
      ...(typeof p.issuer === 'string' && p.issuer !== '' ? { issuer: p.issuer } : {}),
      ...(audiences.length > 0 ? { audiences } : {}),
      ...(remote ? { remoteJwksUri: remote.uri as string } : {}),
      ...(localJwks !== undefined ? { localJwks } : {}),
      claimToHeaders,
      ...(extract
        ? {
            extractFrom: {
              headers: optionalListField(extract.headers, `${at}.extractFrom.headers`).map((h, j) => {
                const header = optionalObjectField(h, `${at}.extractFrom.headers[${j}]`) ?? {};
                if (typeof header.name !== 'string' || header.name === '')
                  throw new Error(`${at}.extractFrom.headers[${j}].name is required`);
                return {
                  name: header.name.toLowerCase(),
                  ...(typeof header.valuePrefix === 'string' ? { valuePrefix: header.valuePrefix } : {}),
                };
              }),
              params: optionalListField(extract.params, `${at}.extractFrom.params`).map(String),
              cookies: optionalListField(extract.cookies, `${at}.extractFrom.cookies`).map(String),
            },
          }
        : {}),
      ...(typeof p.recomputeRoute === 'boolean' ? { recomputeRoute: p.recomputeRoute } : {}),
    } satisfies JwtProviderSettings;
  });
  return {
    name: `securitypolicy/${namespace}/${name}`,
    providers: built,
    allowMissing: jwt.optional === true,
    allowMissingOrFailed: jwt.failOpen === true,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// JWKS

/** Where a provider's keys come from. */
export interface JwksResolver {
  keys(provider: JwtProviderSettings): JWTVerifyGetKey;
}

/**
 * Remote JWKS by URL (cached by jose), inline local JWKS, and overrides for development: a remote JWKS URI as
 * written in the manifest -> an http(s) URL or a file path holding the JWKS JSON (read on every key lookup, so
 * the file may change while the data plane runs).
 */
export function createJwksResolver(
  options: { overrides?: Record<string, string>; timeoutMs?: number } = {},
): JwksResolver {
  const remote = new Map<string, JWTVerifyGetKey>();
  const timeoutDuration = options.timeoutMs ?? 10_000; // EG's default JWKS request timeout
  return {
    keys(provider) {
      if (provider.localJwks !== undefined) {
        const cached = remote.get(`inline:${provider.name}:${provider.localJwks}`);
        if (cached) return cached;
        const keys = createLocalJWKSet(parseJwks(provider.localJwks, `provider ${provider.name} localJWKS`));
        remote.set(`inline:${provider.name}:${provider.localJwks}`, keys);
        return keys;
      }
      const uri = provider.remoteJwksUri;
      if (uri === undefined) throw new Error(`JWT provider ${provider.name} has no JWKS`);
      const target = options.overrides?.[uri] ?? uri;
      let keys = remote.get(target);
      if (keys) return keys;
      if (/^https?:\/\//.test(target)) {
        keys = createRemoteJWKSet(new URL(target), { timeoutDuration });
      } else {
        keys = (header, token) =>
          createLocalJWKSet(parseJwks(fs.readFileSync(target, 'utf8'), `JWKS file ${target}`))(header, token);
      }
      remote.set(target, keys);
      return keys;
    },
  };
}

function parseJwks(text: string, where: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${where} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { keys?: unknown }).keys))
    throw new Error(`${where} has no "keys" list`);
  return parsed as JSONWebKeySet;
}

// ---------------------------------------------------------------------------------------------------------------
// Verification (jwt_verify_lib status strings, as Envoy reports them)

export const JWT_STATUS = {
  missing: 'Jwt is missing',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  unknownIssuer: 'Jwt issuer is not configured',
  audienceNotAllowed: 'Audiences in Jwt are not allowed',
  verificationFailed: 'Jwt verification fails',
  noMatchingKey: "Jwks doesn't have key to match kid or alg from Jwt",
  jwksFetchFailed: 'Jwks remote fetch is failed',
} as const;

type JwtStatus = (typeof JWT_STATUS)[keyof typeof JWT_STATUS];

const CLOCK_SKEW_SECONDS = 60;

interface FoundToken {
  readonly token: string;
  readonly provider: JwtProviderSettings;
}

/** Tokens a provider finds on the request (Envoy's extractor), in its lookup order. */
function extractTokens(provider: JwtProviderSettings, headers: HeaderMap): string[] {
  const tokens: string[] = [];
  const from = provider.extractFrom ?? {
    headers: [{ name: 'authorization', valuePrefix: 'Bearer ' }],
    params: ['access_token'],
    cookies: [],
  };
  for (const location of from.headers) {
    const value = headers.get(location.name);
    if (value === undefined) continue;
    if (!location.valuePrefix) {
      tokens.push(value);
      continue;
    }
    const at = value.indexOf(location.valuePrefix);
    if (at < 0) continue;
    const rest = value.slice(at + location.valuePrefix.length);
    const token = /[A-Za-z0-9\-_.]+/.exec(rest);
    tokens.push(token ? token[0] : value);
  }
  if (from.params.length > 0) {
    const path = headers.get(':path') ?? '';
    const query = new URLSearchParams(path.includes('?') ? path.slice(path.indexOf('?') + 1) : '');
    for (const param of from.params) {
      const value = query.get(param);
      if (value !== null) tokens.push(value);
    }
  }
  if (from.cookies.length > 0) {
    const cookies = new Map<string, string>();
    for (const header of headers.getAll('cookie')) {
      for (const part of header.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0) cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
      }
    }
    for (const cookie of from.cookies) {
      const value = cookies.get(cookie);
      if (value !== undefined) tokens.push(value);
    }
  }
  return tokens;
}

async function verifyToken(
  found: FoundToken,
  jwks: JwksResolver,
  nowSeconds: number,
): Promise<{ status: 'ok'; payload: JWTPayload } | { status: JwtStatus }> {
  const { token, provider } = found;
  if (token.split('.').length !== 3) return { status: JWT_STATUS.badFormat };
  let payload: JWTPayload;
  try {
    decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    return { status: JWT_STATUS.badFormat };
  }
  if (provider.issuer !== undefined && payload.iss !== provider.issuer) return { status: JWT_STATUS.unknownIssuer };
  if (typeof payload.nbf === 'number' && payload.nbf > nowSeconds + CLOCK_SKEW_SECONDS)
    return { status: JWT_STATUS.notYetValid };
  if (typeof payload.exp === 'number' && payload.exp + CLOCK_SKEW_SECONDS < nowSeconds)
    return { status: JWT_STATUS.expired };
  if (provider.audiences && provider.audiences.length > 0) {
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
    if (!audiences.some((a) => provider.audiences?.includes(a))) return { status: JWT_STATUS.audienceNotAllowed };
  }
  try {
    // Time and claims were checked above, with Envoy's rules; jose only checks the signature here.
    await jwtVerify(token, jwks.keys(provider), {
      currentDate: new Date(nowSeconds * 1000),
      clockTolerance: Number.MAX_SAFE_INTEGER,
    });
    return { status: 'ok', payload };
  } catch (error) {
    // Compared by code/name, not instanceof: errors may come from another realm (fetch, test sandboxes).
    const code = (error as { code?: unknown }).code;
    if (code === joseErrors.JWKSNoMatchingKey.code) return { status: JWT_STATUS.noMatchingKey };
    if (code === joseErrors.JWKSTimeout.code || code === joseErrors.JWKSInvalid.code || isFetchFailure(error))
      return { status: JWT_STATUS.jwksFetchFailed };
    return { status: JWT_STATUS.verificationFailed };
  }
}

function isFetchFailure(error: unknown): boolean {
  if (!(error && typeof error === 'object')) return false;
  const { name, message, code } = error as { name?: unknown; message?: unknown; code?: unknown };
  // Node's fetch rejects with TypeError('fetch failed'); jose reports a non-200 answer or non-JSON body as a
  // generic error about the "JSON Web Key Set HTTP response"; a
  // JWKS file that cannot be read throws ENOENT/EACCES; our own JWKS parsing errors name the file.
  return (
    (name === 'TypeError' && message === 'fetch failed') ||
    code === 'ENOENT' ||
    code === 'EACCES' ||
    (code === 'ERR_JOSE_GENERIC' &&
      typeof message === 'string' &&
      message.includes('JSON Web Key Set HTTP response')) ||
    (typeof message === 'string' && /^JWKS file .* (is not JSON|has no "keys" list)/.test(message))
  );
}

/** Envoy's `claim_to_headers` value: strings as is, numbers and booleans as text, objects and lists as base64 JSON. */
function claimHeaderValue(payload: JWTPayload, claim: string): string | undefined {
  let value: unknown = payload;
  for (const segment of claim.split('.')) {
    value =
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)[segment]
        : undefined;
  }
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value !== null && typeof value === 'object') return Buffer.from(JSON.stringify(value)).toString('base64');
  return undefined;
}

/** One provider's verdict: every token it finds must verify (Envoy rejects a request carrying a bad one). */
async function verifyProvider(
  provider: JwtProviderSettings,
  headers: HeaderMap,
  jwks: JwksResolver,
  nowSeconds: number,
): Promise<{ status: 'ok'; payload: JWTPayload } | { status: JwtStatus }> {
  const tokens = extractTokens(provider, headers);
  if (tokens.length === 0) return { status: JWT_STATUS.missing };
  let verified: { status: 'ok'; payload: JWTPayload } | undefined;
  // Envoy verifies the last token found first.
  for (const token of [...tokens].reverse()) {
    const result = await verifyToken({ token, provider }, jwks, nowSeconds);
    if (result.status !== 'ok') return result;
    verified ??= result;
  }
  return verified ?? { status: JWT_STATUS.missing };
}

/** EG asks Envoy to store the payload with the space-delimited `scope` and `scp` claims split into lists. */
function payloadForMetadata(payload: JWTPayload): JWTPayload {
  const out: JWTPayload = { ...payload };
  for (const claim of ['scope', 'scp']) {
    const value = payload[claim];
    if (typeof value === 'string') out[claim] = value.split(' ').filter((part) => part !== '');
  }
  return out;
}

/** Envoy `buildOriginalUri`: scheme://host/path without the query, at most 256 characters. */
function originalUri(headers: HeaderMap): string {
  const path = (headers.get(':path') ?? '/').split('?')[0];
  const uri = `${headers.get(':scheme') ?? 'http'}://${headers.get(':authority') ?? ''}${path}`;
  return uri.slice(0, 256);
}

export interface JwtFilterOptions {
  readonly now?: () => number;
}

/**
 * Envoy's jwt_authn filter. With `settings` the requirement applies to every request; without, the filter uses
 * the `jwt` of the route matched when the request arrives (EG's per-route requirement), and does nothing when
 * that route has none.
 */
export function createJwtFilter(
  settings: JwtSettings | undefined,
  jwks: JwksResolver,
  options: JwtFilterOptions = {},
): HttpFilter {
  const now = options.now ?? Date.now;
  return {
    name: 'envoy.filters.http.jwt_authn',
    async decodeHeaders(stream: StreamContext): Promise<DecodeResult> {
      const requirement = settings ?? (stream.route() as { jwt?: JwtSettings } | undefined)?.jwt;
      if (!requirement) return CONTINUE;
      const headers = stream.requestHeaders;
      const nowSeconds = Math.floor(now() / 1000);
      // Envoy's requires_any: providers in order until one succeeds. A real error beats "issuer is not
      // configured", which beats "missing"; among real errors the last one wins.
      let failure: JwtStatus = JWT_STATUS.missing;
      for (const provider of requirement.providers) {
        // Each provider's verifier first removes the headers its claims go to, so clients cannot pre-set them.
        for (const c of provider.claimToHeaders) headers.remove(c.header);
        const result = await verifyProvider(provider, headers, jwks, nowSeconds);
        if (result.status === 'ok') {
          let added = false;
          for (const c of provider.claimToHeaders) {
            const value = claimHeaderValue(result.payload, c.claim);
            if (value === undefined) continue;
            headers.add(c.header, value);
            added = true;
          }
          const metadata = stream.dynamicMetadata.get('envoy.filters.http.jwt_authn') ?? {};
          metadata[provider.name] = payloadForMetadata(result.payload);
          stream.dynamicMetadata.set('envoy.filters.http.jwt_authn', metadata);
          if (added && provider.recomputeRoute) stream.clearRouteCache();
          return CONTINUE;
        }
        if (
          (result.status !== JWT_STATUS.missing && result.status !== JWT_STATUS.unknownIssuer) ||
          failure === JWT_STATUS.missing
        )
          failure = result.status;
      }
      const status = failure;
      if (requirement.allowMissingOrFailed) return CONTINUE;
      if (requirement.allowMissing && status === JWT_STATUS.missing) return CONTINUE;
      const realm =
        `Bearer realm="${originalUri(headers)}"` + `${status === JWT_STATUS.missing ? '' : ', error="invalid_token"'}`;
      return {
        action: 'localReply',
        reply: {
          status: status === JWT_STATUS.audienceNotAllowed ? 403 : 401,
          headers: [
            ['www-authenticate', realm],
            ['content-type', 'text/plain'],
          ],
          body: status,
          details: `jwt_authn_access_denied{${status.replace(/\s/g, '_')}}`,
        },
      };
    },
  };
}
