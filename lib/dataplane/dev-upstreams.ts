/**
 * The processor's own upstream attempts (fallback within one request) go to each backend's `endpoint`, which a local
 * run overrides like the data plane's traffic: `--dev-upstreams <backend>=<url>[,...]`, keyed by the processor
 * config's backend names (the values of the `x-ai-gateway-backend` header the HTTPRoute rules match on).
 */
import { BACKEND_HEADER } from '@ai-gateway-constructs/processor-config';
import type { ExtProcSettings } from './ext-proc';
import type { DataPlaneModel, ProcessorDeployment, RouteModel } from './model';

/** The processor flag. */
export const DEV_UPSTREAMS_FLAG = '--dev-upstreams';

/**
 * The value of `--dev-upstreams` for one processor, or undefined when it needs none: its config has no rule with a
 * `fallback` (only those make the processor call backends itself), or no backend it serves is overridden.
 * `backendOverrides`: `<namespace>/<name>` of a Backend or Service → `http(s)://host:port`, as `--backend` gives them.
 * Each backend name maps to the override of the backendRef of the HTTPRoute rule (of a route whose ext_proc is this
 * processor) that matches `x-ai-gateway-backend: <name>` exactly.
 */
export function devUpstreamsValue(
  model: DataPlaneModel,
  deployment: ProcessorDeployment,
  backendOverrides: Readonly<Record<string, string>>,
): string | undefined {
  const config = parseConfig(deployment.configJson);
  if (!config || !config.hasFallback) return undefined;
  const found = new Map<string, string>();
  for (const gateway of model.gateways) {
    for (const listener of gateway.listeners) {
      for (const route of listener.routes) {
        if (!route.extProcs.some((settings) => servedBy(settings, deployment))) continue;
        const name = backendMatched(route);
        if (name === undefined || !config.backendNames.has(name) || found.has(name)) continue;
        const url = overrideOf(route, backendOverrides);
        if (url !== undefined) found.set(name, url);
      }
    }
  }
  if (found.size === 0) return undefined;
  return [...found]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, url]) => `${name}=${url}`)
    .join(',');
}

function servedBy(settings: ExtProcSettings, deployment: ProcessorDeployment): boolean {
  const service = settings.service;
  return (
    service.kind === 'Service' &&
    service.namespace === deployment.namespace &&
    service.name === deployment.serviceName &&
    service.port === deployment.servicePort
  );
}

/** The backend name a route's exact `x-ai-gateway-backend` match selects. */
function backendMatched(route: RouteModel): string | undefined {
  const match = route.headers.find(
    (header) => header.name.toLowerCase() === BACKEND_HEADER && header.type === 'Exact' && header.invert !== true,
  );
  return match?.value;
}

/** The override URL of the first of the route's backendRefs that has one, as `scheme://host:port`. */
function overrideOf(route: RouteModel, overrides: Readonly<Record<string, string>>): string | undefined {
  if (route.action.type !== 'forward') return undefined;
  for (const destination of route.action.destinations) {
    const backend = destination.backend;
    const url = backend ? overrides[`${backend.namespace}/${backend.name}`] : undefined;
    if (url === undefined) continue;
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
    return `${parsed.protocol}//${parsed.hostname}:${port}`;
  }
  return undefined;
}

/** What this module reads of the processor config; undefined when it is not JSON of the expected shape. */
function parseConfig(json: string): { hasFallback: boolean; backendNames: Set<string> } | undefined {
  let config: unknown;
  try {
    config = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof config !== 'object' || config === null) return undefined;
  const { backends, routes } = config as { backends?: unknown; routes?: unknown };
  const backendNames = new Set<string>();
  for (const backend of Array.isArray(backends) ? backends : []) {
    const name = (backend as { name?: unknown } | null)?.name;
    if (typeof name === 'string') backendNames.add(name);
  }
  const hasFallback = (Array.isArray(routes) ? routes : []).some((route) => {
    const rules = (route as { rules?: unknown } | null)?.rules;
    return (
      Array.isArray(rules) && rules.some((rule) => (rule as { fallback?: unknown } | null)?.fallback !== undefined)
    );
  });
  return { hasFallback, backendNames };
}
