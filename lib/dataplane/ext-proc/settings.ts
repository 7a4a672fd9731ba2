/**
 * What Envoy Gateway v1.9 makes of one `EnvoyExtensionPolicy.spec.extProc[i]`: the IR it builds in
 * `internal/gatewayapi/envoyextensionpolicy.go` (`buildExtProc`) and the `ExternalProcessor` config its xDS
 * translator writes from it (`internal/xds/translator/extproc.go`, `extProcConfig` / `buildProcessingMode`).
 * Plain data: it lives in the data plane model.
 */
import type { KubeObject } from '../model';
import { durationField, objectField } from '../objects';

export type ExtProcBodyMode = 'Buffered' | 'Streamed' | 'BufferedPartial' | 'FullDuplexStreamed';

export interface ExtProcPhaseSettings {
  /**
   * Whether the phase's headers are sent (EG's `RequestHeaderProcessing` / `ResponseHeaderProcessing`). A policy
   * that gives `processingMode.request` / `.response` always sends them, so absent means true.
   */
  readonly sendHeaders?: boolean;
  /** Absent: the body is not sent (`NONE`). */
  readonly body?: ExtProcBodyMode;
  /** CEL attribute names sent with the first message of the phase (`request_attributes` / `response_attributes`). */
  readonly attributes?: readonly string[];
}

export interface ExtProcSettings {
  /**
   * EG's IR name, `envoyextensionpolicy/<ns>/<name>/extproc/<i>`; the HTTP filter is
   * `envoy.filters.http.ext_proc/<name>`.
   */
  readonly name: string;
  /** The processor: `backendRefs[0]` (a Service, or an EG Backend). */
  readonly service: {
    readonly kind: 'Service' | 'Backend';
    readonly namespace: string;
    readonly name: string;
    readonly port?: number;
  };
  /** The `:authority` of the gRPC calls, `<name>.<namespace>[:<port>]` as EG sets it. */
  readonly authority: string;
  /**
   * A phase that is present sends its headers (EG sets `SEND` exactly when `processingMode.request` /
   * `.response` is given, `SKIP` otherwise) and its body in the given mode.
   */
  readonly processingMode: { readonly request?: ExtProcPhaseSettings; readonly response?: ExtProcPhaseSettings };
  /** How long the filter waits for each answer; Envoy's default (200 ms) when the policy sets none. */
  readonly messageTimeoutMs: number;
  /** `failure_mode_allow`: on a gRPC error or message timeout the request goes on unprocessed. Default false. */
  readonly failOpen: boolean;
  /** Whether the processor's `mode_override` on a headers answer is honoured. Default false. */
  readonly allowModeOverride: boolean;
  /** EG `shadowMode` = Envoy `observability_mode`: messages are sent, answers are not awaited or applied. */
  readonly shadowMode: boolean;
  /** The status of the local reply on a gRPC error when not failing open (Envoy's `status_on_error`, default 500). */
  readonly statusOnError?: number;
  /**
   * The processor cluster's `max_requests` circuit breaker (`backendSettings.circuitBreaker.maxParallelRequests`):
   * the most `Process` streams open at once through this policy's cluster; absent, Envoy Gateway's 1024.
   */
  readonly maxParallelRequests?: number;
  readonly metadataOptions: {
    /** `metadata.accessibleNamespaces`: dynamic metadata namespaces sent to the processor with each message. */
    readonly forwardingNamespaces: readonly string[];
    /** `metadata.writableNamespaces`: the only namespaces the processor's dynamic metadata may write. */
    readonly receivingNamespaces: readonly string[];
  };
}

export type EnvoyHeaderSendMode = 'SEND' | 'SKIP';
export type EnvoyBodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED';

/** The `processing_mode` EG writes into the filter config (`buildProcessingMode`). */
export interface EnvoyProcessingMode {
  readonly requestHeaderMode: EnvoyHeaderSendMode;
  readonly requestBodyMode: EnvoyBodySendMode;
  readonly requestTrailerMode: EnvoyHeaderSendMode;
  readonly responseHeaderMode: EnvoyHeaderSendMode;
  readonly responseBodyMode: EnvoyBodySendMode;
  readonly responseTrailerMode: EnvoyHeaderSendMode;
}

const ENVOY_BODY_MODE: Record<ExtProcBodyMode, EnvoyBodySendMode> = {
  Buffered: 'BUFFERED',
  Streamed: 'STREAMED',
  BufferedPartial: 'BUFFERED_PARTIAL',
  FullDuplexStreamed: 'FULL_DUPLEX_STREAMED',
};

/** Headers SKIP unless processed, body NONE unless set; a full-duplex body also sends the trailers. */
export function envoyProcessingMode(settings: ExtProcSettings): EnvoyProcessingMode {
  const { request, response } = settings.processingMode;
  const requestBodyMode = request?.body === undefined ? 'NONE' : ENVOY_BODY_MODE[request.body];
  const responseBodyMode = response?.body === undefined ? 'NONE' : ENVOY_BODY_MODE[response.body];
  return {
    requestHeaderMode: request !== undefined && request.sendHeaders !== false ? 'SEND' : 'SKIP',
    requestBodyMode,
    requestTrailerMode: requestBodyMode === 'FULL_DUPLEX_STREAMED' ? 'SEND' : 'SKIP',
    responseHeaderMode: response !== undefined && response.sendHeaders !== false ? 'SEND' : 'SKIP',
    responseBodyMode,
    responseTrailerMode: responseBodyMode === 'FULL_DUPLEX_STREAMED' ? 'SEND' : 'SKIP',
  };
}

/** Envoy's `message_timeout` default; EG writes the field only when the policy sets `messageTimeout`. */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 200;

const BODY_MODES: readonly ExtProcBodyMode[] = ['Buffered', 'Streamed', 'BufferedPartial', 'FullDuplexStreamed'];

export function extProcSettingsFromPolicy(policy: KubeObject, index: number): ExtProcSettings {
  const namespace = policy.metadata?.namespace ?? 'default';
  const policyName = policy.metadata?.name;
  const where = `EnvoyExtensionPolicy ${namespace}/${policyName ?? '<unnamed>'} spec.extProc[${index}]`;
  if (!policyName) throw new Error(`${where}: the policy has no metadata.name`);
  const spec = objectField(policy.spec, `EnvoyExtensionPolicy ${namespace}/${policyName} spec`);
  const list = spec.extProc;
  if (!Array.isArray(list) || index < 0 || index >= list.length) throw new Error(`${where}: no such entry`);
  const entry = objectField(list[index], where);

  const refs =
    Array.isArray(entry.backendRefs) && entry.backendRefs.length > 0
      ? entry.backendRefs
      : entry.backendRef
        ? [entry.backendRef]
        : [];
  if (refs.length === 0) throw new Error(`${where}: backendRefs is required`);
  if (refs.length > 1)
    throw new Error(
      `${where}: ${refs.length} backendRefs; the local data plane models one processor per extProc entry`,
    );
  const ref = objectField(refs[0], `${where}.backendRefs[0]`);
  const kind = ref.kind === undefined ? 'Service' : ref.kind;
  if (kind !== 'Service' && kind !== 'Backend')
    throw new Error(`${where}.backendRefs[0]: kind ${String(kind)} is not a Service or Backend`);
  const refName = string(ref.name, `${where}.backendRefs[0].name`);
  const refNamespace =
    ref.namespace === undefined ? namespace : string(ref.namespace, `${where}.backendRefs[0].namespace`);
  const port = ref.port === undefined ? undefined : integer(ref.port, `${where}.backendRefs[0].port`);
  if (kind === 'Service' && port === undefined)
    throw new Error(`${where}.backendRefs[0]: a Service reference needs a port`);

  const mode = entry.processingMode === undefined ? {} : objectField(entry.processingMode, `${where}.processingMode`);
  const metadata = entry.metadata === undefined ? {} : objectField(entry.metadata, `${where}.metadata`);
  const statusOnError =
    entry.statusOnError === undefined ? undefined : integer(entry.statusOnError, `${where}.statusOnError`);
  const circuitBreaker =
    entry.backendSettings === undefined
      ? undefined
      : objectField(entry.backendSettings, `${where}.backendSettings`).circuitBreaker;
  const maxParallelRequests =
    circuitBreaker === undefined
      ? undefined
      : objectField(circuitBreaker, `${where}.backendSettings.circuitBreaker`).maxParallelRequests;
  if (statusOnError !== undefined && (statusOnError < 400 || statusOnError > 599)) {
    throw new Error(`${where}.statusOnError: ${statusOnError} is not a 4xx or 5xx status`);
  }
  const failOpen = entry.failOpen === undefined ? false : boolean(entry.failOpen, `${where}.failOpen`);
  const request = mode.request === undefined ? undefined : phase(mode.request, `${where}.processingMode.request`);
  const response = mode.response === undefined ? undefined : phase(mode.response, `${where}.processingMode.response`);
  // The CRD's CEL rule (Envoy refuses failure_mode_allow with a full-duplex body too).
  if (failOpen && (request?.body === 'FullDuplexStreamed' || response?.body === 'FullDuplexStreamed')) {
    throw new Error(`${where}: a FullDuplexStreamed body mode requires failOpen to be false`);
  }
  return {
    name: `envoyextensionpolicy/${namespace}/${policyName}/extproc/${index}`,
    service: { kind, namespace: refNamespace, name: refName, ...(port === undefined ? {} : { port }) },
    authority: port === undefined ? `${refName}.${refNamespace}` : `${refName}.${refNamespace}:${port}`,
    processingMode: {
      ...(request === undefined ? {} : { request }),
      ...(response === undefined ? {} : { response }),
    },
    messageTimeoutMs:
      entry.messageTimeout === undefined
        ? DEFAULT_MESSAGE_TIMEOUT_MS
        : durationField(entry.messageTimeout, `${where}.messageTimeout`),
    failOpen,
    allowModeOverride:
      mode.allowModeOverride === undefined
        ? false
        : boolean(mode.allowModeOverride, `${where}.processingMode.allowModeOverride`),
    shadowMode: entry.shadowMode === undefined ? false : boolean(entry.shadowMode, `${where}.shadowMode`),
    ...(statusOnError === undefined ? {} : { statusOnError }),
    ...(maxParallelRequests === undefined
      ? {}
      : {
          maxParallelRequests: integer(
            maxParallelRequests,
            `${where}.backendSettings.circuitBreaker.maxParallelRequests`,
          ),
        }),
    metadataOptions: {
      forwardingNamespaces: strings(metadata.accessibleNamespaces, `${where}.metadata.accessibleNamespaces`),
      receivingNamespaces: strings(metadata.writableNamespaces, `${where}.metadata.writableNamespaces`),
    },
  };
}

function phase(value: unknown, where: string): ExtProcPhaseSettings {
  const options = value === null ? {} : objectField(value, where);
  const body = options.body;
  if (body !== undefined && !BODY_MODES.includes(body as ExtProcBodyMode)) {
    throw new Error(`${where}.body: ${String(body)} is not one of ${BODY_MODES.join(', ')}`);
  }
  const attributes = strings(options.attributes, `${where}.attributes`);
  return {
    ...(body === undefined ? {} : { body: body as ExtProcBodyMode }),
    ...(attributes.length ? { attributes } : {}),
  };
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new Error(`${where}: expected a non-empty string`);
  return value;
}

function integer(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${where}: expected an integer`);
  return value;
}

function boolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw new Error(`${where}: expected true or false`);
  return value;
}

function strings(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
    throw new Error(`${where}: expected a list of strings`);
  return [...(value as string[])];
}
