import type { EncodedResponse } from '../grpc/messages';
import type { HeaderChanges } from '../translate/types';

const MAX_ANSWERS = 1000;

/**
 * The encoded request-body answers of requests whose body goes upstream unchanged: the header mutation
 * then depends only on the route, the backend, the model, the upstream path and the backend's static credentials,
 * so most requests reuse an answer instead of building and encoding it. One cache per config snapshot.
 */
export class RequestAnswerCache {
  private readonly answers = new Map<string, { credentials: HeaderChanges | undefined; answer: EncodedResponse }>();

  get(
    route: string,
    backend: string,
    model: string,
    upstreamPath: string,
    pathChanged: boolean,
    credentials: HeaderChanges | undefined,
    build: () => EncodedResponse,
  ): EncodedResponse {
    const key = `${route}\u0000${backend}\u0000${model}\u0000${pathChanged ? upstreamPath : ''}`;
    const cached = this.answers.get(key);
    // Static credentials come as the same object until the credential changes.
    if (cached && cached.credentials === credentials) return cached.answer;
    // Models can be client-chosen under prefix or regex matches: keep the cache bounded.
    if (this.answers.size >= MAX_ANSWERS) this.answers.clear();
    const answer = build();
    this.answers.set(key, { credentials, answer });
    return answer;
  }
}
