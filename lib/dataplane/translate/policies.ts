/**
 * Envoy Gateway policies attached to gateways, listeners and routes: ClientTrafficPolicy, SecurityPolicy (JWT),
 * EnvoyExtensionPolicy (ext_proc) and BackendTrafficPolicy (global rate limits, retries, timeouts). The most
 * specific target wins (route > listener section > gateway), as EG's policy translators decide.
 */
import { ApiKeyAuthPolicyError, apiKeyAuthSettingsFromPolicy, type ApiKeyAuthSettings } from '../api-key-auth';
import { responseOverrideFromPolicy, type ResponseOverrideSettings } from '../custom-response';
import { extProcSettingsFromPolicy, type ExtProcSettings } from '../ext-proc';
import { jwtSettingsFromPolicy, type JwtSettings } from '../jwt';
import { EG_DEFAULT_CIRCUIT_BREAKER_LIMIT, type KubeObject, type RetryPolicy } from '../model';
import { mergeRateLimitRules, rateLimitRulesFromPolicy, type RateLimitRule } from '../rate-limit';
import { GATEWAY_API_GROUP, referenceGranted, targetRefsOf } from './backends';
import { selectedByPolicy } from './target-selectors';
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
  parseQuantityBytes,
  spec,
} from '../objects';

export interface PolicyTarget {
  readonly gateway: { namespace: string; name: string };
  readonly sectionName: string;
  readonly route: { namespace: string; name: string };
}

type Scope = 'route' | 'section' | 'gateway';

/**
 * The policy of `kind` that applies to a target, with the scope it was attached at (first by object order on ties).
 * A route or gateway a policy's `targetSelectors` select counts as named in its `targetRefs` (selectors name no
 * section): Envoy Gateway resolves both into one target list and lets the first policy attached to a route win.
 */
function attachedPolicy(
  index: ObjectIndex,
  kind: string,
  target: PolicyTarget,
  scopes: readonly Scope[],
): { policy: KubeObject; scope: Scope } | undefined {
  const policies = index.all(kind);
  for (const scope of scopes) {
    for (const policy of policies) {
      const namespace = namespaceOf(policy);
      if (scope === 'route' && selectedByPolicy(index, policy, { kind: 'HTTPRoute', ...target.route }))
        return { policy, scope };
      if (scope === 'gateway' && selectedByPolicy(index, policy, { kind: 'Gateway', ...target.gateway }))
        return { policy, scope };
      for (const ref of targetRefsOf(policy)) {
        if ((asString(ref.group) ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP) continue;
        const kindOk =
          scope === 'route'
            ? ref.kind === 'HTTPRoute' && namespace === target.route.namespace && ref.name === target.route.name
            : ref.kind === 'Gateway' && namespace === target.gateway.namespace && ref.name === target.gateway.name;
        if (!kindOk) continue;
        const section = asString(ref.sectionName);
        if (scope === 'section' && section === target.sectionName) return { policy, scope };
        if (scope === 'gateway' && section === undefined) return { policy, scope };
        if (scope === 'route') return { policy, scope };
      }
    }
  }
  return undefined;
}

export interface ListenerPolicies {
  readonly earlyRemoveHeaders: string[];
  readonly bufferLimitBytes?: number;
  readonly enableEnvoyHeaders?: boolean;
  readonly disableRateLimitHeaders?: boolean;
}

export function listenerPolicies(
  index: ObjectIndex,
  gateway: { namespace: string; name: string },
  sectionName: string,
): ListenerPolicies {
  const found = attachedPolicy(
    index,
    'ClientTrafficPolicy',
    { gateway, sectionName, route: { namespace: '', name: '' } },
    ['section', 'gateway'],
  );
  if (!found) return { earlyRemoveHeaders: [] };
  const s = spec(found.policy);
  const headers = asObject(s.headers);
  const early = asObject(headers?.earlyRequestHeaders);
  const bufferLimit = asObject(s.connection)?.bufferLimit;
  const bytes = parseQuantityBytes(bufferLimit);
  if (bufferLimit !== undefined && bytes === undefined) {
    throw new Error(
      `ClientTrafficPolicy ${namespaceOf(found.policy)}/${nameOf(found.policy)}: ` +
        `connection.bufferLimit ${String(bufferLimit)} is not a quantity`,
    );
  }
  return {
    earlyRemoveHeaders: asArray(early?.remove).map((h) => String(h).toLowerCase()),
    bufferLimitBytes: bytes,
    ...(headers?.enableEnvoyHeaders === true ? { enableEnvoyHeaders: true } : {}),
    ...(headers?.disableRateLimitHeaders === true ? { disableRateLimitHeaders: true } : {}),
  };
}

export interface RoutePolicies {
  readonly extProcs: ExtProcSettings[];
  /**
   * Why an EnvoyExtensionPolicy that fails closed cannot run on the route (a Service or Backend that is missing, or
   * in another namespace without a ReferenceGrant): Envoy Gateway then answers 500 on the route instead.
   */
  readonly extProcFailure?: string;
  readonly rateLimitRules: RateLimitRule[];
  readonly jwt?: JwtSettings;
  readonly apiKeyAuth?: ApiKeyAuthSettings;
  /** Why the route's SecurityPolicy cannot be built (e.g. a missing credentials Secret): EG answers 500 instead. */
  readonly securityFailure?: string;
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
  /** BackendTrafficPolicy `circuitBreaker.maxParallelRequests` (EG's default 1024 when unset). */
  readonly maxParallelRequests: number;
  /**
   * BackendTrafficPolicy `responseOverride`: the route policy's list when it sets one, else the inherited gateway
   * policy's (EG merges with a strategic merge patch, which replaces a list without a merge key whole).
   */
  readonly responseOverride?: ResponseOverrideSettings;
}

/** A policy's `circuitBreaker.maxParallelRequests`, when it sets one. */
function btpMaxParallelRequests(policy: KubeObject | undefined): number | undefined {
  const value = policy ? asObject(spec(policy).circuitBreaker)?.maxParallelRequests : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 4294967295) {
    throw new Error(
      `BackendTrafficPolicy ${namespaceOf(policy!)}/${nameOf(policy!)}: circuitBreaker.maxParallelRequests ` +
        `${String(value)} is not an integer between 0 and 4294967295`,
    );
  }
  return value;
}

/** BackendTrafficPolicy `retry` as EG builds the Envoy retry policy (defaults: 2 retries, EG's retry_on set, 503). */
function btpRetry(policy: KubeObject): RetryPolicy | undefined {
  const retry = asObject(spec(policy).retry);
  if (!retry) return undefined;
  const retryOn = asObject(retry.retryOn);
  const triggers = asArray(retryOn?.triggers).map(String);
  const codes = asArray(retryOn?.httpStatusCodes).map(Number).filter(Number.isFinite);
  const perRetry = asObject(retry.perRetry);
  const backOff = asObject(perRetry?.backOff);
  return {
    numRetries: asNumber(retry.numRetries) ?? 2,
    retryOn:
      triggers.length > 0
        ? triggers
        : ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
    retriableStatusCodes: retryOn ? codes : [503],
    perTryTimeoutMs: parseDurationMs(perRetry?.timeout),
    backOffBaseMs: parseDurationMs(backOff?.baseInterval),
    backOffMaxMs: parseDurationMs(backOff?.maxInterval),
  };
}

function extProcsOf(policy: KubeObject): ExtProcSettings[] {
  return asObjects(spec(policy).extProc).map((_, i) => extProcSettingsFromPolicy(policy, i));
}

/** Why an ext_proc's backend cannot be used (EG's `validateExtServiceBackendReference`), or undefined. */
function extProcBackendProblem(index: ObjectIndex, policy: KubeObject, settings: ExtProcSettings): string | undefined {
  const from = { group: 'gateway.envoyproxy.io', kind: 'EnvoyExtensionPolicy', namespace: namespaceOf(policy) };
  const { kind, namespace, name, port } = settings.service;
  const owner = `EnvoyExtensionPolicy ${from.namespace}/${nameOf(policy)}`;
  const target = index.get(kind, namespace, name);
  if (!target) return `${kind} ${namespace}/${name} of ${owner} does not exist`;
  const group = kind === 'Backend' ? 'gateway.envoyproxy.io' : '';
  if (!referenceGranted(index, from, { group, kind, namespace, name })) {
    return `${kind} ${namespace}/${name} is in another namespace and no ReferenceGrant allows ${owner} to use it`;
  }
  if (
    kind === 'Service' &&
    !asObjects(spec(target).ports).some((p) => asNumber(p.port) === port && (asString(p.protocol) ?? 'TCP') === 'TCP')
  ) {
    return `Service ${namespace}/${name} of ${owner} has no TCP port ${String(port)}`;
  }
  return undefined;
}

/**
 * The extensions that run on a route, as Envoy Gateway wires them: one whose backend cannot be used is left out
 * when it fails open, and fails the whole route (answered 500) when it fails closed.
 */
function usableExtProcs(index: ObjectIndex, policy: KubeObject): { extProcs: ExtProcSettings[]; failure?: string } {
  const extProcs: ExtProcSettings[] = [];
  for (const settings of extProcsOf(policy)) {
    const problem = extProcBackendProblem(index, policy, settings);
    if (problem === undefined) extProcs.push(settings);
    else if (!settings.failOpen) return { extProcs: [], failure: problem };
  }
  return { extProcs };
}

export function routePolicies(index: ObjectIndex, target: PolicyTarget): RoutePolicies {
  const eep = attachedPolicy(index, 'EnvoyExtensionPolicy', target, ['route', 'section', 'gateway']);
  const security = attachedPolicy(index, 'SecurityPolicy', target, ['route', 'section', 'gateway']);
  const routeBtp = attachedPolicy(index, 'BackendTrafficPolicy', target, ['route']);
  const gatewayBtp = attachedPolicy(index, 'BackendTrafficPolicy', target, ['section', 'gateway']);

  const gatewayRules = gatewayBtp ? rateLimitRulesFromPolicy(gatewayBtp.policy) : [];
  let rateLimitRules = gatewayRules;
  const mergeType = routeBtp
    ? (asString(spec(routeBtp.policy).mergeType) as 'StrategicMerge' | 'JSONMerge' | undefined)
    : undefined;
  if (routeBtp)
    rateLimitRules = mergeRateLimitRules(gatewayRules, rateLimitRulesFromPolicy(routeBtp.policy), mergeType);
  // Without a mergeType a route-targeted policy replaces the gateway's whole policy; with one, the route's fields win.
  const inherited = gatewayBtp && (!routeBtp || mergeType) ? gatewayBtp.policy : undefined;
  const requestTimeout = (policy: KubeObject | undefined) =>
    policy ? parseDurationMs(asObject(asObject(spec(policy).timeout)?.http)?.requestTimeout) : undefined;
  const { extProcs, failure } = eep ? usableExtProcs(index, eep.policy) : { extProcs: [], failure: undefined };
  let apiKeyAuth: ApiKeyAuthSettings | undefined;
  let securityFailure: string | undefined;
  try {
    apiKeyAuth = security ? apiKeyAuthSettingsFromPolicy(security.policy, index) : undefined;
  } catch (error) {
    // EG (translateSecurityPolicyForRoute): a policy whose apiKeyAuth fails gives its routes a 500 direct response.
    if (!(error instanceof ApiKeyAuthPolicyError)) throw error;
    securityFailure = error.message;
  }
  const responseOverride =
    (routeBtp ? responseOverrideFromPolicy(routeBtp.policy) : undefined) ??
    (inherited ? responseOverrideFromPolicy(inherited) : undefined);
  return {
    extProcs,
    ...(failure ? { extProcFailure: failure } : {}),
    ...(responseOverride ? { responseOverride } : {}),
    jwt: security && asObject(spec(security.policy).jwt) ? jwtSettingsFromPolicy(security.policy) : undefined,
    ...(apiKeyAuth ? { apiKeyAuth } : {}),
    ...(securityFailure ? { securityFailure } : {}),
    rateLimitRules,
    retry: (routeBtp ? btpRetry(routeBtp.policy) : undefined) ?? (inherited ? btpRetry(inherited) : undefined),
    timeoutMs: requestTimeout(routeBtp?.policy) ?? requestTimeout(inherited),
    maxParallelRequests:
      btpMaxParallelRequests(routeBtp?.policy) ?? btpMaxParallelRequests(inherited) ?? EG_DEFAULT_CIRCUIT_BREAKER_LIMIT,
  };
}
