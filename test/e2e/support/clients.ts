/** The official SDK clients pointed at the gateway, and helpers the scenarios share. */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { CLIENT_KEY } from './credentials';
import { clusterMode } from './harness';
import type { RecordedRequest } from './recording-server';

export { CLIENT_KEY };

export function openAIClient(baseURL: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 20_000, defaultHeaders: headers });
}

export function anthropicClient(baseURL: string, headers: Record<string, string> = {}): Anthropic {
  return new Anthropic({ baseURL, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 20_000, defaultHeaders: headers });
}

/** Client-side credential headers that must not reach a provider unchanged. */
export function leakedClientCredentials(request: RecordedRequest): string[] {
  return Object.entries(request.headers)
    .filter(([, value]) => value.includes(CLIENT_KEY))
    .map(([name]) => name);
}

/**
 * `describe` for scenarios a cluster run does not deploy (scripts/e2e/kind.sh lists what it applied in
 * E2E_SCENARIOS); they run locally only.
 */
export function describeScenario(name: string, body: () => void): void {
  if (!clusterMode()) {
    describe(name, body);
    return;
  }
  const deployed = (process.env.E2E_SCENARIOS ?? '').split(',').map((s) => s.trim());
  if (deployed.includes(name)) {
    describe(name, body);
  } else {
    describe.skip(`${name} (not deployed in the cluster run: E2E_SCENARIOS=${process.env.E2E_SCENARIOS ?? ''})`, body);
  }
}

/** Sends a raw HTTP request (for statuses and bodies the SDKs turn into exceptions). */
export async function rawChat(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}`, ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

export const HELLO = [{ role: 'user' as const, content: 'Say hello' }];
