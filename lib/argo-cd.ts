import { ApiObject } from 'cdk8s';
import type { IConstruct } from 'constructs';

/** Argo CD's annotation for the order of sync waves (lower first; the default wave is 0). */
export const ARGO_CD_SYNC_WAVE_ANNOTATION = 'argocd.argoproj.io/sync-wave';
/** Argo CD's per-object sync options. */
export const ARGO_CD_SYNC_OPTIONS_ANNOTATION = 'argocd.argoproj.io/sync-options';

/**
 * The wave of each kind this library emits (and of the kinds charts around it usually hold): what others refer to
 * goes first. Secrets and ConfigMaps before the Deployment that mounts them and the SecurityPolicies that read them;
 * an EnvoyProxy before the Gateway whose `infrastructure.parametersRef` names it; Gateways, Backends, Services and
 * routes next; the policies that target them (and the monitoring objects that select them) last, so Envoy Gateway
 * never reports them `TargetNotFound` during a first sync.
 */
const WAVE_OF_KIND: Readonly<Record<string, number>> = {
  Namespace: -2,
  CustomResourceDefinition: -2,
  ServiceAccount: -1,
  Secret: -1,
  ConfigMap: -1,
  Role: -1,
  RoleBinding: -1,
  ClusterRole: -1,
  ClusterRoleBinding: -1,
  GatewayClass: -1,
  EnvoyProxy: -1,
  Deployment: 0,
  Service: 0,
  NetworkPolicy: 0,
  PodDisruptionBudget: 0,
  HorizontalPodAutoscaler: 0,
  Gateway: 0,
  Backend: 0,
  ReferenceGrant: 0,
  HTTPRouteFilter: 0,
  HTTPRoute: 0,
  GRPCRoute: 0,
  SecurityPolicy: 1,
  ClientTrafficPolicy: 1,
  BackendTrafficPolicy: 1,
  EnvoyExtensionPolicy: 1,
  EnvoyPatchPolicy: 1,
  BackendTLSPolicy: 1,
  PodMonitor: 1,
  ServiceMonitor: 1,
  PrometheusRule: 1,
};

/** What `ArgoCd.annotate` did. */
export interface ArgoCdAnnotations {
  /** Objects that got a sync wave. */
  readonly annotated: number;
  /** Objects left as they were: a wave of their own already, or a kind without a wave here (Argo CD's wave 0). */
  readonly skipped: number;
}

/**
 * Argo CD's view of the synthesized manifests. The processor's config ConfigMaps always carry
 * `argocd.argoproj.io/sync-options: ServerSideApply=true` (a config of more than 256 KiB does not fit Argo CD's
 * default client-side apply, which stores the whole object in an annotation); sync waves are opt-in, here.
 */
export class ArgoCd {
  /**
   * Annotates every Kubernetes object under `scope` (an App, a Chart) with the sync wave of its kind: Secrets,
   * ConfigMaps, ServiceAccounts and EnvoyProxies first (-1), then workloads, Gateways, Backends and routes (0),
   * then the Envoy Gateway policies and Prometheus Operator objects that target or select them (1). An object that
   * already has a wave keeps it. Call it after the last construct is added and before `app.synth()`.
   */
  static annotateSyncWaves(scope: IConstruct): ArgoCdAnnotations {
    let annotated = 0;
    let skipped = 0;
    for (const child of scope.node.findAll()) {
      if (!ApiObject.isApiObject(child)) continue;
      const wave = WAVE_OF_KIND[child.kind];
      const own = (child.metadata.toJson() as { annotations?: Record<string, string> }).annotations;
      if (wave === undefined || own?.[ARGO_CD_SYNC_WAVE_ANNOTATION] !== undefined) {
        skipped++;
        continue;
      }
      child.metadata.addAnnotation(ARGO_CD_SYNC_WAVE_ANNOTATION, String(wave));
      annotated++;
    }
    return { annotated, skipped };
  }
}
