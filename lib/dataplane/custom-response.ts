/**
 * BackendTrafficPolicy `responseOverride` as Envoy Gateway v1.9 configures Envoy's custom_response filter, and as
 * Envoy runs it.
 *
 * Envoy Gateway (`internal/gatewayapi/backendtrafficpolicy.go` buildResponseOverride,
 * `internal/xds/translator/custom_response.go`):
 * - the rules of the route's (merged) policy become one matcher list, evaluated in order, the first match wins;
 * - a rule's predicate ANDs: any of its `statusCodes` (a value compared as the status string, a range inclusive on
 *   both ends), all of its `responseHeaders` (Envoy string matchers on the header's values joined by `,`), and for
 *   `source: Local` / `Backend` Envoy's local-reply input being `true` / `false` (`All`, the default, adds nothing);
 * - the action is a local response policy: the body as a text format (Envoy command operators such as `%...%` are
 *   expanded), `Content-Type` set to `contentType`, the status replaced by `statusCode` when set;
 * - the filter is disabled on the HCM and enabled per route; it is placed FIRST in the chain (order 0), so that on
 *   the way back it is the LAST encoder and sees every response: the upstream's, and every local reply of a later
 *   filter (api_key_auth, jwt_authn, ext_proc immediate responses, the rate-limit 429).
 *
 * Envoy (`source/extensions/filters/http/custom_response`, `local_response_policy.cc`): on the response headers of a
 * matching response the filter calls `sendLocalReply` with the policy's status (else the response's), body and
 * headers; the response head was not sent yet, so Envoy sends that reply directly, bypassing the encoder filters,
 * instead of the original response (whose headers and body are dropped). A response is a local reply when Envoy
 * generated it (the model: its response code details are not `via_upstream`).
 *
 * Modelled: inline bodies without command operators, status and header matches, sources, `contentType` and
 * `statusCode`. Redirects, ConfigMap bodies and response header additions are refused (nothing here emits them).
 */
import { VIA_UPSTREAM } from './filter-manager';
import type { HeaderMap, HttpFilter, StreamContext } from './filter';
import type { KubeObject } from './model';
import { asNumber, asObject, asObjects, asString, namespaceOf, nameOf, spec } from './objects';
import { compileRe2 } from './re2';

/** An Envoy string matcher on a header value (EG `StringMatch`; `RegularExpression` is RE2, whole value). */
export type ResponseHeaderMatch = {
  readonly name: string;
  readonly type: 'Exact' | 'Prefix' | 'Suffix' | 'RegularExpression';
  readonly value: string;
};

export type StatusCodeMatch =
  | { readonly type: 'Value'; readonly value: number }
  | { readonly type: 'Range'; readonly start: number; readonly end: number };

export interface ResponseOverrideRule {
  readonly statusCodes: readonly StatusCodeMatch[];
  readonly responseHeaders: readonly ResponseHeaderMatch[];
  /** `All` (EG's default), `Local` (Envoy generated the response) or `Backend` (the upstream sent it). */
  readonly source: 'All' | 'Local' | 'Backend';
  readonly response: {
    readonly contentType?: string;
    /** Empty when the rule sets no body (Envoy then answers without one). */
    readonly body: string;
    readonly statusCode?: number;
  };
}

export interface ResponseOverrideSettings {
  /** `<policy namespace>/<policy name>` of the policy whose rules apply. */
  readonly policy: string;
  readonly rules: readonly ResponseOverrideRule[];
}

/** Thrown for a `responseOverride` the model does not run (it would otherwise answer differently from Envoy). */
export class ResponseOverridePolicyError extends Error {}

/** The `responseOverride` of a BackendTrafficPolicy, or undefined when it has none. */
export function responseOverrideFromPolicy(policy: KubeObject): ResponseOverrideSettings | undefined {
  const where = `BackendTrafficPolicy ${namespaceOf(policy)}/${nameOf(policy)}: responseOverride`;
  const entries = asObjects(spec(policy).responseOverride);
  if (entries.length === 0) return undefined;
  const rules = entries.map((entry, i): ResponseOverrideRule => {
    const at = `${where}[${i}]`;
    if (entry.redirect !== undefined) throw new ResponseOverridePolicyError(`${at}.redirect is not modelled`);
    const match = asObject(entry.match) ?? {};
    const statusCodes = asObjects(match.statusCodes).map((code, j): StatusCodeMatch => {
      if ((asString(code.type) ?? 'Value') === 'Range') {
        const range = asObject(code.range);
        const start = asNumber(range?.start);
        const end = asNumber(range?.end);
        if (start === undefined || end === undefined || !(end > start))
          throw new ResponseOverridePolicyError(`${at}.match.statusCodes[${j}]: a range needs start < end`);
        return { type: 'Range', start, end };
      }
      const value = asNumber(code.value);
      if (value === undefined) throw new ResponseOverridePolicyError(`${at}.match.statusCodes[${j}] has no value`);
      return { type: 'Value', value };
    });
    const responseHeaders = asObjects(match.responseHeaders).map((header, j): ResponseHeaderMatch => {
      const name = asString(header.name);
      const value = asObject(header.value);
      const type = (asString(value?.type) ?? 'Exact') as ResponseHeaderMatch['type'];
      const text = asString(value?.value);
      if (!name || text === undefined || !['Exact', 'Prefix', 'Suffix', 'RegularExpression'].includes(type))
        throw new ResponseOverridePolicyError(`${at}.match.responseHeaders[${j}] needs a name and a value`);
      if (type === 'RegularExpression') compileRe2(text, `${at}.match.responseHeaders[${j}]`);
      return { name: name.toLowerCase(), type, value: text };
    });
    if (statusCodes.length === 0 && responseHeaders.length === 0)
      throw new ResponseOverridePolicyError(`${at}.match needs statusCodes or responseHeaders`);
    const source = asString(entry.source) ?? 'All';
    if (source !== 'All' && source !== 'Local' && source !== 'Backend')
      throw new ResponseOverridePolicyError(`${at}.source ${source} is not All, Local or Backend`);
    const response = asObject(entry.response);
    if (!response) throw new ResponseOverridePolicyError(`${at} has neither response nor redirect`);
    if (response.header !== undefined) throw new ResponseOverridePolicyError(`${at}.response.header is not modelled`);
    const body = asObject(response.body);
    if (body && (asString(body.type) ?? 'Inline') !== 'Inline')
      throw new ResponseOverridePolicyError(`${at}.response.body: only Inline bodies are modelled`);
    const inline = body ? (asString(body.inline) ?? '') : '';
    if (inline.includes('%'))
      throw new ResponseOverridePolicyError(`${at}.response.body: Envoy command operators (%) are not modelled`);
    const contentType = asString(response.contentType);
    const statusCode = asNumber(response.statusCode);
    return {
      statusCodes,
      responseHeaders,
      source,
      response: {
        ...(contentType ? { contentType } : {}),
        body: inline,
        ...(statusCode !== undefined ? { statusCode } : {}),
      },
    };
  });
  return { policy: `${namespaceOf(policy)}/${nameOf(policy)}`, rules };
}

function statusMatches(codes: readonly StatusCodeMatch[], status: number): boolean {
  return codes.some((code) =>
    code.type === 'Value' ? code.value === status : status >= code.start && status <= code.end,
  );
}

function headerMatches(match: ResponseHeaderMatch, headers: HeaderMap): boolean {
  const values = headers.getAll(match.name);
  // Envoy's response header input: absent → no value, which no string matcher matches.
  if (values.length === 0) return false;
  const value = values.join(',');
  switch (match.type) {
    case 'Exact':
      return value === match.value;
    case 'Prefix':
      return value.startsWith(match.value);
    case 'Suffix':
      return value.endsWith(match.value);
    case 'RegularExpression':
      return compileRe2(match.value).test(value);
  }
}

/** The first rule matching a response (status, headers and source), or undefined. */
export function matchingOverride(
  settings: ResponseOverrideSettings,
  stream: StreamContext,
  headers: HeaderMap,
): ResponseOverrideRule | undefined {
  const status = Number(headers.get(':status') ?? '0');
  const local = stream.responseCodeDetails !== VIA_UPSTREAM;
  return settings.rules.find(
    (rule) =>
      (rule.statusCodes.length === 0 || statusMatches(rule.statusCodes, status)) &&
      rule.responseHeaders.every((h) => headerMatches(h, headers)) &&
      (rule.source === 'All' || (rule.source === 'Local') === local),
  );
}

/** Envoy's custom_response filter for a route: first in the chain, so the last encoder of every response. */
export function createCustomResponseFilter(settings: ResponseOverrideSettings): HttpFilter {
  return {
    name: 'envoy.filters.http.custom_response',
    encodeHeaders(stream, headers) {
      const rule = matchingOverride(settings, stream, headers);
      if (!rule) return { action: 'continue' };
      return {
        action: 'localReply',
        reply: {
          status: rule.response.statusCode ?? Number(headers.get(':status') ?? '500'),
          ...(rule.response.contentType ? { headers: [['content-type', rule.response.contentType]] as const } : {}),
          body: rule.response.body,
          // LocalResponsePolicy sends its reply with empty details.
          details: '',
        },
      };
    },
  };
}
