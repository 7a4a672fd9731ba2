/**
 * Where this project deliberately answers differently from the reference gateway's recorded expectations.
 * Each deviation is applied to the expected client response, with its reason, so the rest of the
 * comparison stays exact.
 */

/**
 * Bedrock Converse may answer with several text blocks. The reference gateway returns only the first one
 * ("response" of "response" + "from" + "assistant"), losing the rest of the answer; we return all text, in
 * order, the same text a streaming client receives.
 */
const CONVERSE_MULTIPLE_TEXT_BLOCKS = new Set([
  '06-aws-system-role-v1-chat-completions',
  '08-aws-bedrock-per-request-credential-signs-and-is-stripped-before-upstream',
  '09-aws-bedrock-no-per-request-credential-falls-back-to-the-configured-one',
]);

export function expectedClientJson(folder: string, expected: string, upstreamResponse: string | undefined): string {
  if (!CONVERSE_MULTIPLE_TEXT_BLOCKS.has(folder) || upstreamResponse === undefined) return expected;
  const blocks = JSON.parse(upstreamResponse).output.message.content as { text?: string }[];
  const document = JSON.parse(expected);
  document.choices[0].message.content = blocks.map((block) => block.text ?? '').join('');
  return JSON.stringify(document);
}

/**
 * Usage the client did not ask for is not sent to it. The reference gateway sends OpenAI clients the final usage
 * chunk (`choices: []`) of a stream whose request did not set `stream_options.include_usage`: from translated
 * backends always, and from OpenAI backends when it asked the provider for usage itself because a token cost is
 * configured. Clients that read `choices[0]` of every chunk break on it. We read the usage for the metadata and
 * keep it from the client: the chunk and its blank line are dropped, and the `"usage":null` member the other
 * chunks carry (OpenAI sets it on every chunk once usage is asked for) is removed.
 */
const USAGE_NOT_ASKED = new Set([
  // Translated streams (Bedrock, Vertex AI, Vertex Anthropic) without stream_options.
  '23-aws-v1-chat-completions-streaming-with-tool-use',
  '26-gcp-vertexai-v1-chat-completions-streaming',
  '28-gcp-anthropicai-v1-chat-completions-streaming-tool-use',
  // streaming-usage-forced/: the gateway asked the provider for usage, the client did not.
  '00-streaming-forced-to-include-usage',
  '02-streaming-model-override-forced-to-include-usage',
]);

export function expectedClientSse(folder: string, expected: string): string {
  if (!USAGE_NOT_ASKED.has(folder)) return expected;
  const out: string[] = [];
  let dropBlank = false;
  for (const line of expected.split('\n')) {
    if (dropBlank && line === '') {
      dropBlank = false;
      continue;
    }
    dropBlank = false;
    if (!line.startsWith('data: {')) {
      out.push(line);
      continue;
    }
    const chunk = JSON.parse(line.slice(6)) as { choices?: unknown[]; usage?: unknown };
    if (chunk.usage && chunk.choices?.length === 0) dropBlank = true;
    else out.push(line.endsWith(',"usage":null}') ? `${line.slice(0, -',"usage":null}'.length)}}` : line);
  }
  return out.join('\n');
}
