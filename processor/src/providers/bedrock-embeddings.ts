/**
 * OpenAI embeddings on Bedrock (InvokeModel `/model/{id}/invoke`), by model family, answered in OpenAI's
 * embeddings shape with usage:
 * - Amazon Titan text embeddings (`amazon.titan-embed-*`): `{inputText, dimensions?}` -> `{embedding,
 *   inputTextTokenCount}`. Titan embeds one text per call, so an `input` array of more than one text cannot be one
 *   upstream request: 400 naming `input` and pointing at a Cohere embed model, which takes batches. `dimensions` is
 *   Titan Text Embeddings V2's only (256, 512 or 1024; Bedrock checks the value).
 * - Cohere embed (`cohere.embed-*`): `{texts, input_type, output_dimension?}` -> `{embeddings}` (an array of float
 *   arrays, or `{float: [...]}` by type); up to 96 texts per call (400 above). Cohere requires `input_type`: the
 *   client's own `input_type` (`search_document`, `search_query`, `classification` or `clustering`, an extra field
 *   the OpenAI SDK sends as given), else `search_document` (embedding documents for retrieval, what most callers of
 *   an embeddings endpoint do). `dimensions` becomes `output_dimension` on Embed v4 only. The token count comes from
 *   Bedrock's `x-amzn-bedrock-input-token-count` response header (Cohere's body has none).
 * - Any other model: 422 naming `model`. Token arrays as `input` have no text form on either: 422.
 * `encoding_format: "base64"` is served by encoding the floats (little-endian float32) as OpenAI does.
 */
import type { TranslationContext, TranslatorFactory, UpstreamRequest } from '../translate/types';
import {
  asArray,
  asObject,
  ConvertingResponse,
  count,
  EMPTY,
  invalid,
  type JsonObject,
  modelPathSegment,
  parseJsonBuffer,
  tokenUsage,
  unsupported,
  openAIEmbeddingsAnswer,
} from './common';
import { floatsToBase64 } from './gemini';

const BACKEND = 'AWSBedrock';

/** Cohere embed's per-call limit on `texts`. */
export const COHERE_MAX_TEXTS = 96;

const COHERE_INPUT_TYPES = ['search_document', 'search_query', 'classification', 'clustering'];

export type BedrockEmbeddingFamily = 'titan' | 'cohere';

export function embeddingFamily(model: string): BedrockEmbeddingFamily {
  const id = model.toLowerCase();
  if (id.includes('amazon.titan-embed')) return 'titan';
  if (id.includes('cohere.embed')) return 'cohere';
  throw unsupported(
    'model',
    BACKEND,
    `"${model.slice(0, 128)}" is not a known embeddings model (Amazon Titan or Cohere embed model ids are)`,
  );
}

/** The client's texts: a string or a non-empty array of strings. */
function texts(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    return input.map((item, i) => {
      if (typeof item !== 'string')
        throw unsupported(`input[${i}]`, BACKEND, 'inputs must be strings (token arrays are not supported)');
      return item;
    });
  }
  throw invalid('input must be a string or a non-empty array of strings', 'input');
}

function dimensionsOf(body: JsonObject): number | undefined {
  const value = body.dimensions;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw invalid('dimensions must be a positive integer', 'dimensions');
  return value;
}

/** The InvokeModel body for an OpenAI embeddings request to `model`, and whether to answer in base64. */
export function openAIEmbeddingsToBedrock(body: JsonObject, model: string): { body: JsonObject; base64: boolean } {
  const family = embeddingFamily(model);
  const encoding = body.encoding_format;
  if (encoding !== undefined && encoding !== null && encoding !== 'float' && encoding !== 'base64')
    throw invalid('encoding_format must be "float" or "base64"', 'encoding_format');
  const base64 = encoding === 'base64';
  const inputs = texts(body.input);
  const dimensions = dimensionsOf(body);
  const id = model.toLowerCase();
  if (family === 'titan') {
    if (inputs.length > 1) {
      throw invalid(
        `input has ${inputs.length} texts, but Amazon Titan embeddings take one text per request: send one text ` +
          'per request, or use a Cohere embed model for batches',
        'input',
      );
    }
    const out: JsonObject = { inputText: inputs[0] };
    if (dimensions !== undefined) {
      if (!id.includes('titan-embed-text-v2')) throw unsupported('dimensions', BACKEND, `model "${model}"`);
      out.dimensions = dimensions;
    }
    return { body: out, base64 };
  }
  if (inputs.length > COHERE_MAX_TEXTS)
    throw invalid(`input has ${inputs.length} texts; Cohere embed takes at most ${COHERE_MAX_TEXTS} per call`, 'input');
  const inputType = body.input_type ?? 'search_document';
  if (typeof inputType !== 'string' || !COHERE_INPUT_TYPES.includes(inputType))
    throw invalid(`input_type must be one of ${COHERE_INPUT_TYPES.join(', ')}`, 'input_type');
  const out: JsonObject = { texts: inputs, input_type: inputType };
  if (dimensions !== undefined) {
    if (!id.includes('cohere.embed-v4')) throw unsupported('dimensions', BACKEND, `model "${model}"`);
    out.output_dimension = dimensions;
  }
  return { body: out, base64 };
}

/** The float vectors of a Titan or Cohere answer, in input order; undefined when the body has none. */
function vectorsOf(family: BedrockEmbeddingFamily, response: JsonObject): unknown[] | undefined {
  if (family === 'titan') return Array.isArray(response.embedding) ? [response.embedding] : undefined;
  const embeddings: unknown = response.embeddings;
  if (Array.isArray(embeddings)) return embeddings as unknown[];
  const byType: unknown = asObject(embeddings)?.float;
  return Array.isArray(byType) ? (byType as unknown[]) : undefined;
}

class BedrockEmbeddingsResponse extends ConvertingResponse {
  constructor(
    private readonly context: TranslationContext,
    private readonly family: BedrockEmbeddingFamily,
    private readonly base64: boolean,
  ) {
    super('OpenAI', false);
  }

  protected convertBody(whole: Buffer): Buffer {
    const response = asObject(parseJsonBuffer(whole));
    const vectors = response ? vectorsOf(this.family, response) : undefined;
    if (!response || !vectors) return this.unreadable('Bedrock embeddings');
    const data = vectors.map((raw, index) => {
      const values = asArray(raw).map((v) => (typeof v === 'number' ? v : 0));
      return { embedding: this.base64 ? floatsToBase64(values) : values, index, object: 'embedding' };
    });
    const tokens =
      this.family === 'titan'
        ? count(response.inputTextTokenCount)
        : count(Number(this.headers['x-amzn-bedrock-input-token-count']));
    this.usage = tokenUsage({ prompt: tokens, completion: 0, cached: 0, reasoning: 0 });
    return openAIEmbeddingsAnswer(data, this.context.requestModel, tokens);
  }

  protected streamChunk(): Buffer {
    return EMPTY;
  }
}

export const openAIEmbeddingsToBedrockBackend: TranslatorFactory = (context) => {
  let base64 = false;
  let family: BedrockEmbeddingFamily = 'titan';
  return {
    request(body): UpstreamRequest {
      family = embeddingFamily(context.upstreamModel);
      const converted = openAIEmbeddingsToBedrock(body, context.upstreamModel);
      base64 = converted.base64;
      return {
        path: `/model/${modelPathSegment(context.upstreamModel)}/invoke`,
        body: converted.body,
        setHeaders: {},
        removeHeaders: [],
      };
    },
    response: () => new BedrockEmbeddingsResponse(context, family, base64),
  };
};
