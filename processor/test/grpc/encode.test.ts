import { encodeProcessingResponse } from '../../src/grpc/encode';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import { OVERWRITE_IF_EXISTS_OR_ADD, type ProcessingResponse } from '../../src/grpc/messages';

const type = loadProtoRoot().lookupType('envoy.service.ext_proc.v3.ProcessingResponse');

/** Our encoder against protobufjs: same decoded message (as plain JSON-ish objects). */
function roundTrip(response: ProcessingResponse): Record<string, unknown> {
  const ours = type.toObject(type.decode(encodeProcessingResponse(response)), { bytes: String, enums: Number, oneofs: true });
  const reference = type.toObject(type.decode(type.encode(response as object).finish()), { bytes: String, enums: Number, oneofs: true });
  expect(ours).toEqual(reference);
  return ours;
}

const option = (key: string, value: string) => ({
  header: { key, rawValue: Buffer.from(value) },
  appendAction: OVERWRITE_IF_EXISTS_OR_ADD,
});

describe('encodeProcessingResponse', () => {
  it('keeps empty oneof members (a bare CONTINUE)', () => {
    for (const kind of ['requestHeaders', 'responseHeaders', 'requestBody', 'responseBody', 'requestTrailers', 'responseTrailers'] as const) {
      const decoded = roundTrip({ [kind]: {} } as ProcessingResponse);
      expect(decoded.response).toBe(kind);
    }
  });

  it('encodes header and body mutations, route cache clearing, mode override and metadata', () => {
    const long = 'x'.repeat(70000);
    const decoded = roundTrip({
      requestBody: {
        response: {
          status: 1,
          headerMutation: {
            setHeaders: [option('x-ai-eg-model', 'gpt-4o ✓'), option(':path', '/v1/chat/completions'), option('x-long', long)],
            removeHeaders: ['authorization', 'x-api-key'],
          },
          bodyMutation: { body: Buffer.from('{"model":"x"}') },
          clearRouteCache: true,
        },
      },
      dynamicMetadata: {
        fields: {
          'io.envoy.ai_gateway': {
            structValue: {
              fields: {
                llm_input_token: { numberValue: 12 },
                llm_output_token: { numberValue: 0 },
                cost: { numberValue: 1.5e9 },
                label: { stringValue: 'ünïcode' },
                flag: { boolValue: true },
                nothing: { nullValue: 0 },
              },
            },
          },
        },
      },
      modeOverride: { responseBodyMode: 1 },
    });
    expect(decoded.modeOverride).toEqual({ responseBodyMode: 1 });
  });

  it('encodes immediate responses and cleared bodies', () => {
    roundTrip({
      immediateResponse: {
        status: { code: 413 },
        headers: { setHeaders: [option('content-type', 'application/json')], removeHeaders: [] },
        body: Buffer.from('{"error":{}}'),
        details: 'request_too_large',
      },
    });
    roundTrip({ responseBody: { response: { bodyMutation: { clearBody: true } } } });
    roundTrip({ responseBody: { response: { bodyMutation: { body: Buffer.alloc(0) } } } });
    roundTrip({ responseTrailers: { headerMutation: { setHeaders: [], removeHeaders: ['grpc-status'] } } });
  });
});
