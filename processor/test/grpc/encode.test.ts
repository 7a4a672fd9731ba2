import { encodeProcessingResponse, encodeStruct, NumberStructLayout } from '../../src/grpc/encode';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import { OVERWRITE_IF_EXISTS_OR_ADD, type ProcessingResponse } from '../../src/grpc/messages';

const type = loadProtoRoot().lookupType('envoy.service.ext_proc.v3.ProcessingResponse');

/** Our encoder against protobufjs: same decoded message (as plain JSON-ish objects). */
function roundTrip(response: ProcessingResponse): Record<string, unknown> {
  const ours = type.toObject(type.decode(encodeProcessingResponse(response)), {
    bytes: String,
    enums: Number,
    oneofs: true,
  });
  const reference = type.toObject(type.decode(type.encode(response).finish()), {
    bytes: String,
    enums: Number,
    oneofs: true,
  });
  expect(ours).toEqual(reference);
  return ours;
}

const option = (key: string, value: string) => ({
  header: { key, rawValue: Buffer.from(value) },
  appendAction: OVERWRITE_IF_EXISTS_OR_ADD,
});

describe('encodeProcessingResponse', () => {
  it('keeps empty oneof members (a bare CONTINUE)', () => {
    for (const kind of [
      'requestHeaders',
      'responseHeaders',
      'requestBody',
      'responseBody',
      'requestTrailers',
      'responseTrailers',
    ] as const) {
      const decoded = roundTrip({ [kind]: {} });
      expect(decoded.response).toBe(kind);
    }
  });

  it('encodes header and body mutations, route cache clearing and mode override', () => {
    const long = 'x'.repeat(70000);
    const decoded = roundTrip({
      requestBody: {
        response: {
          status: 1,
          headerMutation: {
            setHeaders: [
              option('x-ai-eg-model', 'gpt-4o ✓'),
              option(':path', '/v1/chat/completions'),
              option('x-long', long),
            ],
            removeHeaders: ['authorization', 'x-api-key'],
          },
          bodyMutation: { body: Buffer.from('{"model":"x"}') },
          clearRouteCache: true,
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

  it('encodes streamed body responses (FULL_DUPLEX_STREAMED), byte for byte as protobufjs', () => {
    const cases: ProcessingResponse[] = [
      { responseBody: { response: { bodyMutation: { streamedResponse: { body: Buffer.from('data: {}\n\n') } } } } },
      {
        responseBody: {
          response: { bodyMutation: { streamedResponse: { body: Buffer.alloc(300, 0x61), endOfStream: true } } },
        },
      },
      { responseBody: { response: { bodyMutation: { streamedResponse: { endOfStream: true } } } } },
      { responseBody: { response: { bodyMutation: { streamedResponse: { body: Buffer.alloc(0) } } } } },
    ];
    for (const response of cases) {
      const decoded = roundTrip(response) as {
        responseBody: { response: { bodyMutation: { mutation: string; streamedResponse: unknown } } };
      };
      expect(decoded.responseBody.response.bodyMutation.mutation).toBe('streamedResponse');
      const reference = Buffer.from(type.encode(response).finish());
      expect(encodeProcessingResponse(response).equals(reference)).toBe(true);
    }
  });

  it('writes number metadata from a fixed layout, each copy with its own values (0 until set)', () => {
    const layout = new NumberStructLayout('io.envoy.ai_gateway', [
      'llm_input_token',
      'llm_output_token',
      'coût',
      'k'.repeat(200),
    ]);
    const decode = (values: number[]) => {
      const metadata = layout.create();
      values.forEach((value, i) => layout.set(metadata, i, value));
      return type.toObject(type.decode(encodeProcessingResponse({ responseBody: {}, dynamicMetadata: metadata })));
    };
    const first = decode([12, 0, 1.5e9, 0.25]);
    const second = decode([7, 3, 0, 2 ** 40]);
    const fields = (decoded: Record<string, unknown>) =>
      (
        decoded as {
          dynamicMetadata: {
            fields: Record<string, { structValue: { fields: Record<string, { numberValue: number }> } }>;
          };
        }
      ).dynamicMetadata.fields['io.envoy.ai_gateway'].structValue.fields;
    expect(fields(first)).toEqual({
      llm_input_token: { numberValue: 12 },
      llm_output_token: { numberValue: 0 },
      coût: { numberValue: 1.5e9 },
      ['k'.repeat(200)]: { numberValue: 0.25 },
    });
    expect(fields(second).llm_input_token).toEqual({ numberValue: 7 });
    expect(fields(second)['k'.repeat(200)]).toEqual({ numberValue: 2 ** 40 });
    expect(first.responseBody).toEqual({});
    expect(fields(decode([]))).toEqual(fields(decode([0, 0, 0, 0])));
  });
});

describe('encodeStruct', () => {
  it('writes nested structs, numbers and strings as protobufjs reads them', () => {
    const struct = loadProtoRoot().lookupType('google.protobuf.Struct');
    const bytes = encodeStruct({
      'io.envoy.ai_gateway': {
        consumer_usd_month: { requests_per_unit: 500_000_000, unit: 'MONTH' },
        tokens_day: { requests_per_unit: 4_294_967_295, unit: 'DAY' },
        ünïcode: 'wert ✓',
      },
    });
    const decoded = struct.toObject(struct.decode(bytes)) as Record<string, unknown>;
    const reference = struct.toObject(
      struct.decode(
        struct
          .encode(
            struct.fromObject({
              fields: {
                'io.envoy.ai_gateway': {
                  structValue: {
                    fields: {
                      consumer_usd_month: {
                        structValue: {
                          fields: { requests_per_unit: { numberValue: 500_000_000 }, unit: { stringValue: 'MONTH' } },
                        },
                      },
                      tokens_day: {
                        structValue: {
                          fields: { requests_per_unit: { numberValue: 4_294_967_295 }, unit: { stringValue: 'DAY' } },
                        },
                      },
                      ünïcode: { stringValue: 'wert ✓' },
                    },
                  },
                },
              },
            }),
          )
          .finish(),
      ),
    ) as Record<string, unknown>;
    expect(decoded).toEqual(reference);
  });
});
