/** backendRefs -> BackendTargets: Services, Envoy Gateway Backends, ReferenceGrants, upstream TLS. */
import type { BackendEndpoint, BackendTarget, KubeObject, UpstreamTls } from '../model';
import { asNumber, asObject, asObjects, asString, nameOf, namespaceOf, ObjectIndex, spec, type Json } from '../objects';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const ENVOY_GATEWAY_GROUP = 'gateway.envoyproxy.io';

/** A reference that failed, with the Gateway API status reason EG reports for it. */
export class RefError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FromObject {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
}

/** Whether a ReferenceGrant in the target namespace lets `from` refer to `<group>/<kind>/<name>` there. */
export function referenceGranted(
  index: ObjectIndex,
  from: FromObject,
  to: { group: string; kind: string; namespace: string; name: string },
): boolean {
  if (from.namespace === to.namespace) return true;
  return index
    .all('ReferenceGrant')
    .filter((grant) => namespaceOf(grant) === to.namespace)
    .some((grant) => {
      const grantSpec = spec(grant);
      const fromOk = asObjects(grantSpec.from).some(
        (f) =>
          (asString(f.group) ?? '') === from.group &&
          asString(f.kind) === from.kind &&
          asString(f.namespace) === from.namespace,
      );
      const toOk = asObjects(grantSpec.to).some(
        (t) =>
          (asString(t.group) ?? '') === to.group &&
          asString(t.kind) === to.kind &&
          (asString(t.name) === undefined || asString(t.name) === to.name),
      );
      return fromOk && toOk;
    });
}

/**
 * Resolves one backendRef (of a route or a policy) to where traffic goes. Throws a RefError with EG's reason:
 * `InvalidKind`, `RefNotPermitted`, `BackendNotFound`, `UnsupportedValue`.
 */
export function resolveBackendRef(index: ObjectIndex, ref: Json, from: FromObject): BackendTarget {
  const group = asString(ref.group) ?? '';
  const kind = asString(ref.kind) ?? 'Service';
  const name = asString(ref.name) ?? '';
  const namespace = asString(ref.namespace) ?? from.namespace;
  const port = asNumber(ref.port);
  const isService = group === '' && kind === 'Service';
  const isBackend = group === ENVOY_GATEWAY_GROUP && kind === 'Backend';
  if (!isService && !isBackend)
    throw new RefError(
      'InvalidKind',
      `backendRef ${group}/${kind} ${namespace}/${name} is not a Service or an Envoy Gateway Backend`,
    );
  if (!referenceGranted(index, from, { group, kind, namespace, name })) {
    throw new RefError(
      'RefNotPermitted',
      `backendRef ${kind} ${namespace}/${name} is in another namespace and no ReferenceGrant allows it`,
    );
  }
  const object = index.get(kind, namespace, name);
  if (!object) throw new RefError('BackendNotFound', `${kind} ${namespace}/${name} does not exist`);
  if (isService) {
    if (port === undefined)
      throw new RefError('UnsupportedValue', `backendRef Service ${namespace}/${name} has no port`);
    const servicePorts = asObjects(spec(object).ports).map((p) => asNumber(p.port));
    if (servicePorts.length > 0 && !servicePorts.includes(port)) {
      throw new RefError('BackendNotFound', `Service ${namespace}/${name} has no port ${port}`);
    }
    return {
      kind: 'Service',
      namespace,
      name,
      port,
      endpoints: [{ type: 'fqdn', hostname: `${name}.${namespace}.svc.cluster.local`, port }],
      tls: checkedTls(upstreamTlsFromPolicy(index, object, '')),
    };
  }
  const endpoints = backendEndpoints(object);
  if (endpoints.length === 0) throw new RefError('UnsupportedValue', `Backend ${namespace}/${name} has no endpoints`);
  return {
    kind: 'Backend',
    namespace,
    name,
    port,
    endpoints,
    tls: checkedTls(mergeTls(backendTls(index, object), upstreamTlsFromPolicy(index, object, ENVOY_GATEWAY_GROUP))),
  };
}

/**
 * Envoy Gateway refuses upstream TLS that trusts nothing (InvalidBackendTLS) unless verification is skipped, whatever
 * kind of backend and whichever object set it (checked after the Backend's own settings and a policy are merged).
 */
function checkedTls(tls: UpstreamTls | undefined): UpstreamTls | undefined {
  if (tls && !tls.insecureSkipVerify && !tls.useSystemCAs && tls.caCertificates.length === 0)
    throw new RefError('InvalidBackendTLS', 'CACertificate must be specified when InsecureSkipVerify is false');
  return tls;
}

/**
 * A Backend's own TLS settings with a BackendTLSPolicy targeting it, as Envoy Gateway merges them: the policy's
 * hostname (SNI), CAs and system-CA choice win where it sets them; the Backend keeps the rest.
 */
function mergeTls(backend: UpstreamTls | undefined, policy: UpstreamTls | undefined): UpstreamTls | undefined {
  if (!backend || !policy) return backend ?? policy;
  const policyCas = policy.useSystemCAs || policy.caCertificates.length > 0;
  return {
    ...backend,
    sni: policy.sni ?? backend.sni,
    caCertificates: policyCas ? policy.caCertificates : backend.caCertificates,
    useSystemCAs: policy.useSystemCAs || (!policyCas && backend.useSystemCAs),
  };
}

function backendEndpoints(backend: KubeObject): BackendEndpoint[] {
  const endpoints: BackendEndpoint[] = [];
  for (const endpoint of asObjects(spec(backend).endpoints)) {
    const fqdn = asObject(endpoint.fqdn);
    const ip = asObject(endpoint.ip);
    const unix = asObject(endpoint.unix);
    if (fqdn && asString(fqdn.hostname))
      endpoints.push({ type: 'fqdn', hostname: asString(fqdn.hostname)!, port: asNumber(fqdn.port) ?? 80 });
    else if (ip && asString(ip.address))
      endpoints.push({ type: 'ip', address: asString(ip.address)!, port: asNumber(ip.port) ?? 80 });
    else if (unix && asString(unix.path)) endpoints.push({ type: 'unix', path: asString(unix.path)! });
  }
  return endpoints;
}

function caBundles(index: ObjectIndex, namespace: string, refs: unknown): string[] {
  const bundles: string[] = [];
  for (const ref of asObjects(refs)) {
    const kind = asString(ref.kind) ?? 'ConfigMap';
    const object = index.get(kind, namespace, asString(ref.name) ?? '');
    if (!object)
      throw new RefError(
        'UnsupportedValue',
        `CA certificate ${kind} ${namespace}/${asString(ref.name)} does not exist`,
      );
    const data = asObject(object.data) ?? {};
    const text = asString(data['ca.crt']);
    // Secrets carry base64 data; ConfigMaps carry text.
    if (text !== undefined) bundles.push(kind === 'Secret' ? Buffer.from(text, 'base64').toString('utf8') : text);
    else throw new RefError('UnsupportedValue', `${kind} ${namespace}/${nameOf(object)} has no ca.crt`);
  }
  return bundles;
}

/** Backend `spec.tls` (Envoy Gateway's own TLS settings on the Backend CR). */
function backendTls(index: ObjectIndex, backend: KubeObject): UpstreamTls | undefined {
  const tls = asObject(spec(backend).tls);
  if (!tls) return undefined;
  const caCertificates = caBundles(index, namespaceOf(backend), tls.caCertificateRefs);
  return {
    sni: asString(tls.sni),
    caCertificates,
    useSystemCAs: asString(tls.wellKnownCACertificates) === 'System',
    insecureSkipVerify: tls.insecureSkipVerify === true,
  };
}

/** A BackendTLSPolicy in the target's namespace that targets it: TLS with SNI = `validation.hostname`. */
function upstreamTlsFromPolicy(index: ObjectIndex, target: KubeObject, group: string): UpstreamTls | undefined {
  const policy = index
    .all('BackendTLSPolicy')
    .filter((p) => namespaceOf(p) === namespaceOf(target))
    .find((p) =>
      [...asObjects(spec(p).targetRefs), ...(asObject(spec(p).targetRef) ? [asObject(spec(p).targetRef)!] : [])].some(
        (t) =>
          (asString(t.group) ?? '') === group &&
          asString(t.kind) === target.kind &&
          asString(t.name) === nameOf(target),
      ),
    );
  if (!policy) return undefined;
  const validation = asObject(spec(policy).validation) ?? {};
  const caCertificates = caBundles(index, namespaceOf(policy), validation.caCertificateRefs);
  return {
    sni: asString(validation.hostname),
    caCertificates,
    useSystemCAs: asString(validation.wellKnownCACertificates) === 'System',
    insecureSkipVerify: false,
  };
}

/** Every targetRef of a policy (`targetRefs` and the older single `targetRef`). */
export function targetRefsOf(policy: KubeObject): Json[] {
  const s = spec(policy);
  const single = asObject(s.targetRef);
  return [...asObjects(s.targetRefs), ...(single ? [single] : [])];
}
