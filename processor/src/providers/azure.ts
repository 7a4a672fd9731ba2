/**
 * Azure OpenAI: the OpenAI wire format under `/openai/deployments/{deployment}/...?api-version=`; the
 * Responses API lives at `/openai/responses`. Responses pass through like OpenAI's.
 */
import { openAIPassthrough } from '../translate/openai';
import {
  TranslationError,
  type TranslationContext,
  type TranslatorFactory,
  type UpstreamRequest,
} from '../translate/types';

/** The upstream path for a client subpath (e.g. `/chat/completions`) and query. */
export function azurePath(context: TranslationContext, deployment: string, subpath: string): string {
  const schema = context.backend.schema;
  if (schema.name !== 'AzureOpenAI')
    throw new TranslationError(500, `backend ${context.backend.name} is not an Azure OpenAI backend`, 'server_error');
  const base =
    subpath === '/responses' || subpath.startsWith('/responses/')
      ? `/openai${subpath}`
      : `/openai/deployments/${encodeURIComponent(deployment)}${subpath}`;
  const params = new URLSearchParams(context.query.startsWith('?') ? context.query.slice(1) : context.query);
  params.delete('api-version');
  const rest = params.toString();
  return `${base}?api-version=${encodeURIComponent(schema.apiVersion)}${rest ? `&${rest}` : ''}`;
}

export const openAIToAzure: TranslatorFactory = (context) => {
  const passthrough = openAIPassthrough(context);
  return {
    request(body): UpstreamRequest {
      // The OpenAI translator applies the model override and forced stream usage; only the path differs.
      const upstream = passthrough.request(body);
      return { ...upstream, path: azurePath(context, context.upstreamModel, context.subpath) };
    },
    forwardUnchanged(): UpstreamRequest | undefined {
      const upstream = passthrough.forwardUnchanged?.();
      return upstream && { ...upstream, path: azurePath(context, context.upstreamModel, context.subpath) };
    },
    forwardForm(): UpstreamRequest {
      return { ...passthrough.forwardForm!(), path: azurePath(context, context.upstreamModel, context.subpath) };
    },
    response: () => passthrough.response(),
  };
};
