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
