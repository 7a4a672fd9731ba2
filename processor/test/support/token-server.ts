/**
 * A local OAuth2 token endpoint for credential tests. `silent`: it accepts the connection and the request and
 * never answers (a hung token endpoint); `ok`: it answers a client-credentials token.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface TokenServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  mode: 'silent' | 'ok';
  /** Requests received so far (answered or not). */
  requests: number;
  close(): Promise<void>;
}

export async function startTokenServer(mode: TokenServer['mode'] = 'silent'): Promise<TokenServer> {
  const sockets = new Set<Socket>();
  const server = http.createServer((request, response) => {
    state.requests++;
    request.resume();
    if (state.mode === 'silent') return;
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ access_token: `token-${state.requests}`, expires_in: 3600, token_type: 'Bearer' }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state: TokenServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mode,
    requests: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return state;
}
