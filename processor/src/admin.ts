import * as http from 'node:http';
import type { Registry } from 'prom-client';
import type { CredentialStatus } from './config/runtime';

export interface AdminState {
  /** Config loaded and the ext_proc server is accepting streams (false while draining). */
  ready(): boolean;
  /**
   * Optional: the credential state of the config snapshot now serving (a RuntimeConfig is one). Listed by
   * `/readyz`; fails readiness only when no routed backend has a usable credential.
   */
  credentials?(): CredentialStatus;
  registry: Registry;
}

/**
 * The `/readyz` answer. Not serving (starting, draining): 503. Serving, but every routed backend's credential is
 * missing, empty or malformed: 503, since the processor can answer nothing but errors. Serving with some backends'
 * credentials broken: 200 `ready (degraded)`, since the problem is the same on every replica (one Secret) and an
 * unready processor gets no traffic at all, so failing readiness would take down the routes that still work.
 * Every problem is listed, one per line (backend and Secret names, never values).
 */
export function readiness(state: Pick<AdminState, 'ready' | 'credentials'>): { status: number; body: string } {
  const serving = state.ready();
  const credentials = state.credentials?.();
  const problems = credentials?.credentialProblems ?? [];
  const details = problems.map((problem) => `${problem}\n`).join('');
  if (!serving) return { status: 503, body: `not ready\n${details}` };
  if (credentials?.noUsableBackend)
    return { status: 503, body: `not ready: no routed backend has a usable credential\n${details}` };
  if (problems.length > 0) {
    const count =
      problems.length === 1 ? '1 backend credential problem' : `${problems.length} backend credential problems`;
    return { status: 200, body: `ready (degraded: ${count})\n${details}` };
  }
  return { status: 200, body: 'ready\n' };
}

/** `/healthz` (alive), `/readyz` (serving, with any credential problems), `/metrics` (Prometheus text). */
export function createAdminServer(state: AdminState): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const { status, body } = readiness(state);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    } else if (path === '/metrics') {
      state.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': state.registry.contentType }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
}
