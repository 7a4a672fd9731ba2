/**
 * Kubernetes objects -> the data-plane model, as Envoy Gateway v1.9 translates them: Gateways and listeners,
 * HTTPRoute attachment (parentRefs, allowedRoutes, hostname intersection), one route entry per
 * (rule, match, hostname) in EG's order, statuses, policies, and the processor Deployments. Pure: no I/O.
 */
import type {
  Condition,
  DataPlaneModel,
  GatewayModel,
  KubeObject,
  ListenerModel,
  RouteModel,
  RouteParentStatus,
  RouteStatus,
} from './model';
import { GATEWAY_API_GROUP } from './translate/backends';
import { intersectHostnames } from './translate/hostnames';
import {
  asArray,
  asNumber,
  asObject,
  asObjects,
  asString,
  labelSelectorMatches,
  namespaceOf,
  nameOf,
  ObjectIndex,
  refOf,
  spec,
  type Json,
} from './objects';
import { listenerPolicies, routePolicies } from './translate/policies';
import { findProcessors } from './translate/processors';
import { translateHttpRouteRules } from './translate/routes';
import { sortRoutes } from './translate/sort';

/** The controllerName Envoy Gateway's GatewayClasses carry by default. */
export const ENVOY_GATEWAY_CONTROLLER = 'gateway.envoyproxy.io/gatewayclass-controller';

export interface TranslateOptions {
  /**
   * Order HTTPRoutes as EG's Kubernetes provider does before translating (creationTimestamp, then namespace, then
   * name). EG's translator goldens skip that step; pass false to keep the input order. Default true.
   */
  readonly sortHttpRoutes?: boolean;
  /** Fill the CRD defaults the API server would (a match without a path is `PathPrefix /`). Default true. */
  readonly applyApiServerDefaults?: boolean;
}

interface ListenerContext {
  readonly gateway: KubeObject;
  readonly gatewayRef: { namespace: string; name: string };
  readonly spec: Json;
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  readonly hostname?: string;
  readonly routes: RouteModel[];
  attachedRoutes: number;
}

function isHttpListener(listener: ListenerContext): boolean {
  return listener.protocol === 'HTTP' || listener.protocol === 'HTTPS';
}

/** Whether a listener's `allowedRoutes` admits an HTTPRoute from `routeNamespace`. */
function listenerAllows(index: ObjectIndex, listener: ListenerContext, routeNamespace: string): boolean {
  if (!isHttpListener(listener)) return false;
  const allowed = asObject(listener.spec.allowedRoutes) ?? {};
  const kinds = asObjects(allowed.kinds);
  if (
    kinds.length > 0 &&
    !kinds.some((k) => (asString(k.group) ?? GATEWAY_API_GROUP) === GATEWAY_API_GROUP && k.kind === 'HTTPRoute')
  )
    return false;
  const namespaces = asObject(allowed.namespaces) ?? {};
  switch (asString(namespaces.from) ?? 'Same') {
    case 'All':
      return true;
    case 'Same':
      return routeNamespace === listener.gatewayRef.namespace;
    case 'Selector':
      return labelSelectorMatches(asObject(namespaces.selector) ?? {}, index.namespaceLabels(routeNamespace));
    default:
      return false;
  }
}

function condition(type: string, ok: boolean, reason: string, message?: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason, ...(message ? { message } : {}) };
}

/**
 * EnvoyProxy `spec.preserveRouteOrder` for a Gateway, as Envoy Gateway merges its EnvoyProxies
 * (`internal/gatewayapi/envoyproxy_merge.go` MergeEnvoyProxyConfigs, step 1): the Gateway's own
 * `infrastructure.parametersRef` (same namespace) over its GatewayClass' `parametersRef`. Without a `mergeType` the
 * Gateway's replaces the class's; with StrategicMerge or JSONMerge a field the Gateway's leaves unset comes from the
 * class's. With it, EG keeps the routes in input order instead of sorting them.
 */
function preservesRouteOrder(index: ObjectIndex, gateway: KubeObject): boolean {
  const gatewayRef = asObject(asObject(spec(gateway).infrastructure)?.parametersRef);
  const gatewayProxy =
    gatewayRef?.kind === 'EnvoyProxy'
      ? index.get('EnvoyProxy', namespaceOf(gateway), asString(gatewayRef.name) ?? '')
      : undefined;
  const own = gatewayProxy === undefined ? undefined : spec(gatewayProxy).preserveRouteOrder;
  const mergeType = gatewayProxy === undefined ? undefined : spec(gatewayProxy).mergeType;
  const merges = mergeType === 'StrategicMerge' || mergeType === 'JSONMerge';
  if (gatewayProxy !== undefined && (!merges || own !== undefined)) return own === true;
  const gatewayClass = index.all('GatewayClass').find((c) => nameOf(c) === asString(spec(gateway).gatewayClassName));
  const classRef = gatewayClass ? asObject(spec(gatewayClass).parametersRef) : undefined;
  const classProxy =
    classRef?.kind === 'EnvoyProxy'
      ? index.get('EnvoyProxy', asString(classRef.namespace) ?? 'default', asString(classRef.name) ?? '')
      : undefined;
  return classProxy !== undefined && spec(classProxy).preserveRouteOrder === true;
}

function byCreation(a: KubeObject, b: KubeObject): number {
  const ta = Date.parse(a.metadata?.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata?.creationTimestamp ?? '') || 0;
  return ta - tb || namespaceOf(a).localeCompare(namespaceOf(b)) || nameOf(a).localeCompare(nameOf(b));
}

export function translate(objects: readonly KubeObject[], options: TranslateOptions = {}): DataPlaneModel {
  const index = new ObjectIndex(objects);
  const defaults = { applyApiServerDefaults: options.applyApiServerDefaults ?? true };

  const listenersByGateway = new Map<string, ListenerContext[]>();
  for (const gateway of index.all('Gateway')) {
    // A Gateway of a GatewayClass that names another controller is not Envoy Gateway's to serve. Without the
    // GatewayClass object in the manifests the Gateway is served (the class usually comes with the installation).
    const gatewayClass = index.all('GatewayClass').find((c) => nameOf(c) === asString(spec(gateway).gatewayClassName));
    const controller = gatewayClass ? asString(spec(gatewayClass).controllerName) : undefined;
    if (controller !== undefined && controller !== ENVOY_GATEWAY_CONTROLLER) continue;
    const gatewayRef = refOf(gateway);
    const listeners = asObjects(spec(gateway).listeners).map((l): ListenerContext => ({
      gateway,
      gatewayRef,
      spec: l,
      name: asString(l.name) ?? '',
      port: asNumber(l.port) ?? 0,
      protocol: asString(l.protocol) ?? 'HTTP',
      hostname: asString(l.hostname),
      routes: [],
      attachedRoutes: 0,
    }));
    listenersByGateway.set(`${gatewayRef.namespace}/${gatewayRef.name}`, listeners);
  }

  const httpRoutes = index.all('HTTPRoute');
  if (options.sortHttpRoutes ?? true) httpRoutes.sort(byCreation);

  const routeStatuses: RouteStatus[] = [];
  for (const route of httpRoutes) {
    const routeRef = refOf(route);
    const translated = translateHttpRouteRules(index, route, defaults);
    const routeHostnames = asArray(spec(route).hostnames).map(String);
    const resolvedRefs = translated.refError
      ? condition('ResolvedRefs', false, translated.refError.reason, translated.refError.message)
      : condition('ResolvedRefs', true, 'ResolvedRefs', 'Resolved all the Object references for the Route');
    const parents: RouteParentStatus[] = [];

    for (const parentRef of asObjects(spec(route).parentRefs)) {
      if (
        (asString(parentRef.group) ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP ||
        (asString(parentRef.kind) ?? 'Gateway') !== 'Gateway'
      )
        continue;
      const gatewayNamespace = asString(parentRef.namespace) ?? routeRef.namespace;
      const gatewayName = asString(parentRef.name) ?? '';
      const listeners = listenersByGateway.get(`${gatewayNamespace}/${gatewayName}`);
      // A parent that is not one of this controller's Gateways gets no status from it.
      if (!listeners) continue;
      const sectionName = asString(parentRef.sectionName);
      const port = asNumber(parentRef.port);
      const status = {
        parentRef: {
          namespace: gatewayNamespace,
          name: gatewayName,
          ...(sectionName ? { sectionName } : {}),
          ...(port !== undefined ? { port } : {}),
        },
      };
      const selected = listeners.filter(
        (l) => (sectionName === undefined || l.name === sectionName) && (port === undefined || l.port === port),
      );
      if (selected.length === 0) {
        parents.push({
          ...status,
          conditions: [
            condition('Accepted', false, 'NoMatchingParent', 'No listeners match this parent ref'),
            resolvedRefs,
          ],
        });
        continue;
      }
      const allowed = selected.filter((l) => listenerAllows(index, l, routeRef.namespace));
      if (allowed.length === 0) {
        parents.push({
          ...status,
          conditions: [
            condition(
              'Accepted',
              false,
              'NotAllowedByListeners',
              'No listeners included by this parent ref allowed this attachment.',
            ),
            resolvedRefs,
          ],
        });
        continue;
      }
      let attached = false;
      for (const listener of allowed) {
        const others = listeners
          .filter((o) => o !== listener && o.port === listener.port && o.hostname !== undefined)
          .map((o) => o.hostname!);
        const hosts = intersectHostnames(routeHostnames, listener.hostname, others);
        if (hosts.length === 0) continue;
        attached = true;
        listener.attachedRoutes++;
        const target = { gateway: listener.gatewayRef, sectionName: listener.name, route: routeRef };
        const policies = routePolicies(index, target);
        for (const host of hosts) {
          for (const entry of translated.entries) {
            listener.routes.push({
              name:
                `httproute/${routeRef.namespace}/${routeRef.name}/rule/` +
                `${entry.ruleIndex}/match/${entry.matchIndex}/${host.replaceAll('.', '_')}`,
              hostname: host,
              route: routeRef,
              ruleIndex: entry.ruleIndex,
              matchIndex: entry.matchIndex,
              path: entry.path,
              headers: entry.headers,
              queryParams: entry.queryParams,
              // EG answers 500 on a route whose fail-closed extension cannot be wired.
              // EG answers 500 on a route whose SecurityPolicy cannot be built.
              action:
                policies.extProcFailure || policies.securityFailure
                  ? { type: 'directResponse', status: 500 }
                  : entry.action(listener.port),
              requestHeaders: entry.requestHeaders,
              responseHeaders: entry.responseHeaders,
              urlRewrite: entry.urlRewrite,
              // The HTTPRoute's own timeout takes precedence over a BackendTrafficPolicy's (EG
              // getEffectiveRequestTimeout).
              timeoutMs: entry.timeoutMs ?? policies.timeoutMs,
              // EG's GetRetry: the HTTPRoute rule's own retry first, then the BackendTrafficPolicy's.
              retry: entry.retry ?? policies.retry,
              maxParallelRequests: policies.maxParallelRequests,
              extProcs: policies.extProcs,
              rateLimitRules: policies.rateLimitRules,
              jwt: policies.jwt,
              ...(policies.apiKeyAuth ? { apiKeyAuth: policies.apiKeyAuth } : {}),
              ...(policies.responseOverride ? { responseOverride: policies.responseOverride } : {}),
            });
          }
        }
      }
      parents.push({
        ...status,
        conditions: attached
          ? [condition('Accepted', true, 'Accepted', 'Route is accepted'), resolvedRefs]
          : [
              condition(
                'Accepted',
                false,
                'NoMatchingListenerHostname',
                "There were no hostname intersections between the HTTPRoute and this parent ref's Listener(s).",
              ),
              resolvedRefs,
            ],
      });
    }
    routeStatuses.push({ route: routeRef, parents });
  }

  const gateways: GatewayModel[] = [];
  for (const [key, listeners] of listenersByGateway) {
    const [namespace, name] = key.split('/');
    const models: ListenerModel[] = [];
    const preserveOrder = listeners.length > 0 && preservesRouteOrder(index, listeners[0].gateway);
    for (const listener of listeners.filter(isHttpListener)) {
      const policies = listenerPolicies(index, listener.gatewayRef, listener.name);
      const tls = asObject(listener.spec.tls);
      models.push({
        name: `${namespace}/${name}/${listener.name}`,
        sectionName: listener.name,
        port: listener.port,
        protocol: listener.protocol as 'HTTP' | 'HTTPS',
        ...(listener.hostname ? { hostname: listener.hostname } : {}),
        ...(tls
          ? {
              tls: {
                mode: asString(tls.mode) === 'Passthrough' ? 'Passthrough' : 'Terminate',
                certificateRefs: asObjects(tls.certificateRefs).map((r) => ({
                  namespace: asString(r.namespace) ?? namespace,
                  name: asString(r.name) ?? '',
                })),
              },
            }
          : {}),
        routes: preserveOrder ? listener.routes : sortRoutes(listener.routes),
        earlyRemoveHeaders: policies.earlyRemoveHeaders,
        ...(policies.bufferLimitBytes !== undefined ? { bufferLimitBytes: policies.bufferLimitBytes } : {}),
        ...(policies.enableEnvoyHeaders ? { enableEnvoyHeaders: true } : {}),
        ...(policies.disableRateLimitHeaders ? { disableRateLimitHeaders: true } : {}),
        attachedRoutes: listener.attachedRoutes,
      });
    }
    gateways.push({ namespace, name, listeners: models });
  }

  return { gateways, routeStatuses, processors: findProcessors(index) };
}
