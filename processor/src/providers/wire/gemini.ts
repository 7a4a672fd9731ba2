/**
 * Vertex AI Gemini wire shapes (`:generateContent`, `:streamGenerateContent?alt=sse`): the request the OpenAI chat
 * translator writes and the usage it reads. Type aliases rather than interfaces, so a value stays assignable to a
 * plain JSON object.
 */

export type GeminiPart =
  | { text: string }
  | { inlineData: { mimeType: string; data: string } }
  | { fileData: { mimeType: string; fileUri: string } }
  | { functionCall: { name: string; args: Record<string, unknown> } }
  | { functionResponse: { name: string; response: Record<string, unknown> } };

export type GeminiContent = { parts: GeminiPart[]; role: 'user' | 'model' };

export type GeminiFunctionDeclaration = {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
};

export type GeminiTool = { functionDeclarations: GeminiFunctionDeclaration[] };

export type GeminiToolConfig = {
  functionCallingConfig: { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] };
};

export type GeminiGenerationConfig = {
  maxOutputTokens?: number;
  temperature?: number;
  topP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  candidateCount?: number;
  stopSequences?: string[];
  responseMimeType?: 'application/json';
  responseJsonSchema?: Record<string, unknown>;
  thinkingConfig?: { thinkingBudget: number; includeThoughts: boolean };
};

/** The generateContent request body (the model is in the path). */
export type GeminiRequest = {
  contents?: GeminiContent[];
  tools?: GeminiTool[];
  toolConfig?: GeminiToolConfig;
  /** Optional in the API; the translator always sends one. */
  generationConfig?: GeminiGenerationConfig;
  systemInstruction?: { parts: GeminiPart[] };
};

/** `usageMetadata`: completion = candidates + thoughts. */
export type GeminiUsageMetadata = {
  promptTokenCount?: number;
  toolUsePromptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  cachedContentTokenCount?: number;
  totalTokenCount?: number;
};

/** A part of an answer: text (a thought summary when `thought` is true) or a function call. */
export type GeminiResponsePart = {
  text?: string;
  thought?: boolean;
  functionCall?: { id?: string; name: string; args?: Record<string, unknown> };
};

export type GeminiCandidate = {
  content?: { role?: 'model'; parts?: GeminiResponsePart[] };
  finishReason?: string;
  index?: number;
};

/** A generateContent answer, and each event of a streamGenerateContent stream (`error` in-band). */
export type GeminiResponse = {
  candidates?: GeminiCandidate[];
  usageMetadata?: GeminiUsageMetadata;
  modelVersion?: string;
  responseId?: string;
  /** RFC 3339. */
  createTime?: string;
  error?: { code?: number; message?: string; status?: string };
};

// ---------------------------------------------------------------------------------------------------
// Vertex AI text embeddings (`:predict`)

/** One embeddings instance: the text and its optional task type and title. */
export type VertexEmbeddingInstance = { content: string; task_type?: string; title?: string };

export type VertexEmbeddingsRequest = {
  instances: VertexEmbeddingInstance[];
  parameters: { outputDimensionality?: number };
};

export type VertexEmbeddingPrediction = {
  embeddings: { values: number[]; statistics?: { token_count?: number; truncated?: boolean } };
};

export type VertexPredictResponse = { predictions: VertexEmbeddingPrediction[] };
