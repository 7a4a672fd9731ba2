import type { EncodedResponse } from '../grpc/messages';
import type { HeaderChanges } from '../translate/types';

const MAX_ANSWERS = 1000;
/** Bound on the keys' characters plus the encoded answers' bytes. */
const MAX_BYTES = 1024 * 1024;

/**
 * The encoded request-body answers of requests whose body goes upstream unchanged: the header mutation
 * then depends only on the route, the backend, the model, the upstream path, the consumer and the backend's static
 * credentials,
 * so most requests reuse an answer instead of building and encoding it. One cache per config snapshot, bounded by
 * entries and by bytes: models can be client-chosen under prefix or regex matches.
 */
export class RequestAnswerCache {
  private readonly answers = new Map<
    string,
    { credentials: HeaderChanges | undefined; answer: EncodedResponse; size: number }
  >();
  private size = 0;

  /** Characters of the cached keys plus bytes of the encoded answers. */
  get bytes(): number {
    return this.size;
  }

  get(
    route: string,
    backend: string,
    model: string,
    upstreamPath: string,
    pathChanged: boolean,
    credentials: HeaderChanges | undefined,
    build: () => EncodedResponse,
    /** The consumer's id: its header and limit metadata are part of the answer (a bounded set, from the config). */
    consumer?: string,
  ): EncodedResponse {
    const path = pathChanged ? upstreamPath : '';
    const key =
      consumer === undefined
        ? `${route}\u0000${backend}\u0000${model}\u0000${path}`
        : `${route}\u0000${backend}\u0000${model}\u0000${path}\u0000${consumer}`;
    const cached = this.answers.get(key);
    // Static credentials come as the same object until the credential changes.
    if (cached && cached.credentials === credentials) return cached.answer;
    const answer = build();
    const size = key.length + answer.length;
    if (size > MAX_BYTES) return answer; // never cached
    if (cached) this.size -= cached.size; // replaced below (the credential changed)
    if (this.answers.size >= MAX_ANSWERS || this.size + size > MAX_BYTES) {
      this.answers.clear();
      this.size = 0;
    }
    this.answers.set(key, { credentials, answer, size });
    this.size += size;
    return answer;
  }
}
