/** One HTTPRoute rule -> the per-match route entries EG builds (matches, filters, destinations, timeouts, retries). */
import type {
  Destination,
  HeaderMatch,
  HeaderModifier,
  KubeObject,
  PathMatch,
  QueryMatch,
  Redirect,
  RetryPolicy,
  RouteAction,
  UrlRewrite,
} from '../model';
import { ENVOY_GATEWAY_GROUP, GATEWAY_API_GROUP, RefError, resolveBackendRef, type FromObject } from './backends';
import {
  asArray,
  asNumber,
  asObject,
  asObjects,
  asString,
  namespaceOf,
  nameOf,
  ObjectIndex,
  parseDurationMs,
  spec,
  type Json,
} from '../objects';

export interface TranslateDefaults {
  /** Fill the defaults the API server's CRD schema fills (a rule without matches matches `PathPrefix /`, ...). */
  readonly applyApiServerDefaults: boolean;
}

/** One match of a rule, before it is bound to a listener and hostname. */
export interface RuleMatchEntry {
  readonly ruleIndex: number;
  readonly matchIndex: number;
  readonly path?: PathMatch;
  readonly headers: HeaderMatch[];
  readonly queryParams: QueryMatch[];
  /** Builds the action for a listener port (a redirect without a port takes the listener's port). */
  readonly action: (listenerPort: number) => RouteAction;
  readonly requestHeaders?: HeaderModifier;
  readonly responseHeaders?: HeaderModifier;
  readonly urlRewrite?: UrlRewrite;
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
}

export interface TranslatedRoute {
  readonly entries: RuleMatchEntry[];
  /** ResolvedRefs=False reason and message, when a reference failed. */
  readonly refError?: RefError;
}

export function emptyModifier(): HeaderModifier {
  return { set: [], add: [], remove: [] };
}

function headerModifier(value: unknown): HeaderModifier {
  const modifier = asObject(value) ?? {};
  const pairs = (list: unknown) =>
    asObjects(list).map((h) => [(asString(h.name) ?? '').toLowerCase(), asString(h.value) ?? ''] as const);
  return {
    set: pairs(modifier.set),
    add: pairs(modifier.add),
    remove: asArray(modifier.remove).map((n) => String(n).toLowerCase()),
  };
}

function pathMatchOf(match: Json, defaults: TranslateDefaults): PathMatch | undefined {
  const path = asObject(match.path);
  if (!path) return defaults.applyApiServerDefaults ? { type: 'PathPrefix', value: '/' } : undefined;
  const type = (asString(path.type) ?? 'PathPrefix') as PathMatch['type'];
  if (type !== 'Exact' && type !== 'PathPrefix' && type !== 'RegularExpression')
    throw new RefError('UnsupportedValue', `path match type ${String(type)} is not supported`);
  const value = asString(path.value) ?? '/';
  // EG trims a trailing `/` of a prefix (path_separated_prefix), except for `/` itself.
  return {
    type,
    value: type === 'PathPrefix' && value.length > 1 && value.endsWith('/') ? value.replace(/\/+$/, '') || '/' : value,
  };
}

function headerMatchesOf(match: Json): HeaderMatch[] {
  const headers: HeaderMatch[] = asObjects(match.headers).map((h) => ({
    name: (asString(h.name) ?? '').toLowerCase(),
    type: (asString(h.type) ?? 'Exact') === 'RegularExpression' ? 'RegularExpression' : 'Exact',
    value: asString(h.value) ?? '',
  }));
  // EG folds a method match into the header matches, as an exact `:method` match, after the headers.
  const method = asString(match.method);
  if (method) headers.push({ name: ':method', type: 'Exact', value: method });
  return headers;
}

function queryMatchesOf(match: Json): QueryMatch[] {
  return asObjects(match.queryParams).map((q) => ({
    name: asString(q.name) ?? '',
    type: (asString(q.type) ?? 'Exact') === 'RegularExpression' ? 'RegularExpression' : 'Exact',
    value: asString(q.value) ?? '',
  }));
}

interface DirectResponseSpec {
  readonly status: number;
  readonly body?: Buffer;
  readonly headers: HeaderModifier;
}

/**
 * EG's HTTPRouteFilter `directResponse`: status (default 200), inline or ConfigMap body, content type as a response
 * header.
 */
function directResponseOf(index: ObjectIndex, filter: KubeObject): DirectResponseSpec | undefined {
  const direct = asObject(spec(filter).directResponse);
  if (!direct) return undefined;
  const where = `HTTPRouteFilter ${namespaceOf(filter)}/${nameOf(filter)}`;
  const bodySpec = asObject(direct.body);
  let body: Buffer | undefined;
  if (bodySpec) {
    const type = asString(bodySpec.type) ?? 'Inline';
    if (type === 'Inline') body = Buffer.from(asString(bodySpec.inline) ?? '', 'utf8');
    else {
      const valueRef = asObject(bodySpec.valueRef) ?? {};
      const configMap = index.get('ConfigMap', namespaceOf(filter), asString(valueRef.name) ?? '');
      if (!configMap)
        throw new RefError(
          'UnsupportedValue',
          `Unable to translate ${where}: ConfigMap ${asString(valueRef.name)} not found.`,
        );
      const data = Object.values(asObject(configMap.data) ?? {});
      const binary = Object.values(asObject(configMap.binaryData) ?? {});
      if (data.length + binary.length !== 1)
        throw new RefError(
          'UnsupportedValue',
          `Unable to translate ${where}: its ConfigMap must hold exactly one key.`,
        );
      body = data.length === 1 ? Buffer.from(String(data[0]), 'utf8') : Buffer.from(String(binary[0]), 'base64');
    }
  }
  const headers = headerModifier(direct.header);
  const contentType = asString(direct.contentType);
  return {
    status: asNumber(direct.statusCode) ?? 200,
    body,
    headers: { ...headers, set: contentType ? [['content-type', contentType], ...headers.set] : headers.set },
  };
}

function mergeModifiers(a: HeaderModifier | undefined, b: HeaderModifier): HeaderModifier {
  if (!a) return b;
  return { set: [...a.set, ...b.set], add: [...a.add, ...b.add], remove: [...a.remove, ...b.remove] };
}

/** Gateway API rule `retry` (attempts, backoff, codes) as EG builds it, on top of Envoy Gateway's retry defaults. */
function ruleRetry(rule: Json): RetryPolicy | undefined {
  const retry = asObject(rule.retry);
  if (!retry) return undefined;
  const codes = asArray(retry.codes).map(Number).filter(Number.isFinite);
  const perTry = parseDurationMs(asObject(rule.timeouts)?.backendRequest);
  return {
    numRetries: asNumber(retry.attempts) ?? 2,
    // EG keeps its default triggers and only replaces the retriable status codes.
    retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
    retriableStatusCodes: codes.length > 0 ? codes : [503],
    perTryTimeoutMs: perTry,
    backOffBaseMs: parseDurationMs(retry.backoff),
  };
}

/**
 * `timeouts.request` (or `backendRequest` without a retry) -> the Envoy route timeout; an unparsable value is EG's 15
 * s.
 */
function ruleTimeoutMs(rule: Json): number | undefined {
  const timeouts = asObject(rule.timeouts);
  if (!timeouts) return undefined;
  let timeout: number | undefined;
  if (timeouts.request !== undefined) timeout = parseDurationMs(timeouts.request) ?? 15_000;
  if (timeouts.backendRequest !== undefined && rule.retry === undefined)
    timeout = parseDurationMs(timeouts.backendRequest) ?? 15_000;
  return timeout;
}

function redirectOf(value: Json, path: PathMatch | undefined): (listenerPort: number) => RouteAction {
  const scheme = asString(value.scheme);
  const hostname = asString(value.hostname);
  const explicitPort = asNumber(value.port);
  const pathSpec = asObject(value.path);
  let redirectPath: Redirect['path'];
  if (pathSpec?.type === 'ReplaceFullPath')
    redirectPath = { type: 'ReplaceFullPath', value: asString(pathSpec.replaceFullPath) ?? '/' };
  else if (pathSpec?.type === 'ReplacePrefixMatch' && path?.type === 'PathPrefix') {
    redirectPath = {
      type: 'ReplacePrefixMatch',
      prefix: path.value,
      value: asString(pathSpec.replacePrefixMatch) ?? '/',
    };
  }
  const statusCode = asNumber(value.statusCode) ?? 302;
  return (listenerPort) => {
    // EG derives a missing port: the scheme's well-known port when a scheme is given, else the listener's port.
    const port =
      explicitPort ?? (scheme?.toLowerCase() === 'http' ? 80 : scheme?.toLowerCase() === 'https' ? 443 : listenerPort);
    return { type: 'redirect', redirect: { scheme, hostname, port, path: redirectPath, statusCode } };
  };
}

/**
 * Translates the rules of one HTTPRoute. Invalid references do not drop the rule: like EG, the affected share of
 * traffic (or the whole rule) is answered 500 and the route's ResolvedRefs condition carries the first error.
 */
export function translateHttpRouteRules(
  index: ObjectIndex,
  route: KubeObject,
  defaults: TranslateDefaults,
): TranslatedRoute {
  const routeNamespace = namespaceOf(route);
  const from: FromObject = { group: GATEWAY_API_GROUP, kind: 'HTTPRoute', namespace: routeNamespace };
  const entries: RuleMatchEntry[] = [];
  let firstError: RefError | undefined;
  const noteError = (error: unknown) => {
    const refError = error instanceof RefError ? error : new RefError('UnsupportedValue', String(error));
    firstError ??= refError;
  };

  asObjects(spec(route).rules).forEach((rule, ruleIndex) => {
    let filterError = false;
    let requestHeaders: HeaderModifier | undefined;
    let responseHeaders: HeaderModifier | undefined;
    let rewrite: { hostname?: string; path?: Json } | undefined;
    let redirect: Json | undefined;
    let direct: DirectResponseSpec | undefined;
    for (const filter of asObjects(rule.filters)) {
      try {
        switch (filter.type) {
          case 'RequestHeaderModifier':
            requestHeaders = mergeModifiers(requestHeaders, headerModifier(filter.requestHeaderModifier));
            break;
          case 'ResponseHeaderModifier':
            responseHeaders = mergeModifiers(responseHeaders, headerModifier(filter.responseHeaderModifier));
            break;
          case 'URLRewrite': {
            const value = asObject(filter.urlRewrite) ?? {};
            rewrite = { hostname: asString(value.hostname), path: asObject(value.path) };
            break;
          }
          case 'RequestRedirect':
            redirect = asObject(filter.requestRedirect) ?? {};
            break;
          case 'ExtensionRef': {
            const ref = asObject(filter.extensionRef) ?? {};
            if (asString(ref.group) !== ENVOY_GATEWAY_GROUP || asString(ref.kind) !== 'HTTPRouteFilter') {
              throw new RefError(
                'UnsupportedValue',
                `extensionRef ${asString(ref.group)}/${asString(ref.kind)} is not supported`,
              );
            }
            const object = index.get('HTTPRouteFilter', routeNamespace, asString(ref.name) ?? '');
            if (!object)
              throw new RefError(
                'UnsupportedValue',
                `Unable to translate HTTPRouteFilter: ${routeNamespace}/${asString(ref.name)}.`,
              );
            const response = directResponseOf(index, object);
            if (!response) {
              throw new RefError(
                'UnsupportedValue',
                `HTTPRouteFilter ${routeNamespace}/${asString(ref.name)}: only directResponse is modelled ` +
                  `by the local data plane`,
              );
            }
            direct = response;
            break;
          }
          case 'RequestMirror':
            // Mirrored copies never change the response the client gets; the local data plane does not send them.
            break;
          default:
            throw new RefError(
              'UnsupportedValue',
              `filter type ${String(filter.type)} is not supported by the local data plane`,
            );
        }
      } catch (error) {
        noteError(error);
        filterError = true;
      }
    }

    const destinations: Destination[] = [];
    const backendRefs = asObjects(rule.backendRefs);
    backendRefs.forEach((ref, refIndex) => {
      const weight = asNumber(ref.weight) ?? 1;
      let requestMod: HeaderModifier | undefined;
      let responseMod: HeaderModifier | undefined;
      for (const filter of asObjects(ref.filters)) {
        if (filter.type === 'RequestHeaderModifier')
          requestMod = mergeModifiers(requestMod, headerModifier(filter.requestHeaderModifier));
        if (filter.type === 'ResponseHeaderModifier')
          responseMod = mergeModifiers(responseMod, headerModifier(filter.responseHeaderModifier));
      }
      const name = `httproute/${routeNamespace}/${nameOf(route)}/rule/${ruleIndex}/backend/${refIndex}`;
      try {
        const backend = resolveBackendRef(index, ref, from);
        if (weight > 0)
          destinations.push({ name, weight, backend, requestHeaders: requestMod, responseHeaders: responseMod });
      } catch (error) {
        noteError(error);
        if (weight > 0)
          destinations.push({
            name,
            weight,
            invalidReason: error instanceof RefError ? error.reason : 'UnsupportedValue',
          });
      }
    });
    const validWeight = destinations.filter((d) => d.backend).reduce((sum, d) => sum + d.weight, 0);

    let matches = asObjects(rule.matches);
    if (matches.length === 0) matches = [{}];
    matches.forEach((match, matchIndex) => {
      let path: PathMatch | undefined;
      try {
        path = pathMatchOf(match, defaults);
      } catch (error) {
        noteError(error);
      }
      let action: (listenerPort: number) => RouteAction;
      if (filterError) action = () => ({ type: 'directResponse', status: 500 });
      else if (redirect) action = redirectOf(redirect, path);
      else if (direct) {
        const { status, body } = direct;
        action = () => ({ type: 'directResponse', status, body });
      } else if (validWeight === 0) action = () => ({ type: 'directResponse', status: 500 });
      else action = () => ({ type: 'forward', destinations });

      let urlRewrite: UrlRewrite | undefined;
      if (rewrite) {
        const p = rewrite.path;
        let rewritePath: UrlRewrite['path'];
        if (p?.type === 'ReplaceFullPath')
          rewritePath = { type: 'ReplaceFullPath', value: asString(p.replaceFullPath) ?? '/' };
        else if (p?.type === 'ReplacePrefixMatch' && path?.type === 'PathPrefix') {
          rewritePath = {
            type: 'ReplacePrefixMatch',
            prefix: path.value,
            value: asString(p.replacePrefixMatch) ?? '/',
          };
        }
        urlRewrite = { hostname: rewrite.hostname, path: rewritePath };
      }
      entries.push({
        ruleIndex,
        matchIndex,
        path,
        headers: headerMatchesOf(match),
        queryParams: queryMatchesOf(match),
        action,
        requestHeaders,
        responseHeaders:
          direct && !filterError ? mergeModifiers(direct.headers, responseHeaders ?? emptyModifier()) : responseHeaders,
        urlRewrite,
        timeoutMs: ruleTimeoutMs(rule),
        retry: ruleRetry(rule),
      });
    });
  });
  return { entries, refError: firstError };
}
