/** An Egress in memory for fallback tests: each backend's answer from a handler, every attempt recorded. */
import { AttemptFailure, type AttemptRequest, type AttemptResponse, type Egress } from '../../src/fallback';

export type Handler = (request: AttemptRequest, signal: AbortSignal) => AttemptResponse | Promise<AttemptResponse>;

export class FakeEgress implements Egress {
  readonly calls: Array<{ request: AttemptRequest; timeoutMs: number; signal: AbortSignal }> = [];
  handlers = new Map<string, Handler>();

  send(request: AttemptRequest, _endpoint: unknown, timeoutMs: number, signal: AbortSignal): Promise<AttemptResponse> {
    this.calls.push({ request, timeoutMs, signal });
    const handler = this.handlers.get(request.backend);
    if (!handler) return Promise.reject(new AttemptFailure('connection_failure', `no fake for ${request.backend}`));
    return Promise.resolve().then(() => handler(request, signal));
  }
}
