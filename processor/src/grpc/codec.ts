import type { Root, Type } from 'protobufjs/light';
import { encodeProcessingResponse } from './encode';
import type { OutgoingResponse, ProcessingRequest, ProcessingResponse } from './messages';

export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const PROCESS_METHOD_PATH = `/${EXT_PROC_SERVICE}/Process`;
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * Requests decode with protobufjs to message instances read field by field (no toObject conversion);
 * responses are written by the hand-written encoder in encode.ts, or are already encoded.
 */
export interface Codec<T> {
  serialize: (value: T) => Buffer;
  deserialize: (bytes: Buffer) => T;
}

function codecFor<T>(type: Type): Codec<T> {
  return {
    serialize: (value) => {
      const bytes = type.encode(value as object).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes) => type.decode(bytes) as unknown as T,
  };
}

export interface ExtProcCodecs {
  request: Codec<ProcessingRequest>;
  response: { serialize: (value: OutgoingResponse) => Buffer; deserialize: (bytes: Buffer) => ProcessingResponse };
  healthRequest: Codec<{ service?: string }>;
  healthResponse: Codec<{ status: number }>;
}

export function extProcCodecs(root: Root): ExtProcCodecs {
  return {
    request: codecFor(root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest')),
    response: {
      serialize: (value) => (Buffer.isBuffer(value) ? value : encodeProcessingResponse(value)),
      deserialize: codecFor<ProcessingResponse>(root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse'))
        .deserialize,
    },
    healthRequest: codecFor(root.lookupType('grpc.health.v1.HealthCheckRequest')),
    healthResponse: codecFor(root.lookupType('grpc.health.v1.HealthCheckResponse')),
  };
}

export const HEALTH_SERVING = 1;
export const HEALTH_NOT_SERVING = 2;
export const HEALTH_SERVICE_UNKNOWN = 3;
