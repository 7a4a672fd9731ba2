/**
 * Real HTTP/2 clients that cancel an ext_proc stream the way Envoy does when its client goes away right after
 * the first message: the gRPC request headers, one framed ProcessingRequest and RST_STREAM, back to back.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { extProcCodecs, PROCESS_METHOD_PATH } from '../../src/grpc/codec';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import type { ProcessingRequest } from '../../src/grpc/messages';

const codecs = extProcCodecs(loadProtoRoot());

/** A ProcessingRequest in gRPC's length-prefixed framing (uncompressed). */
export function grpcFrame(request: ProcessingRequest): Buffer {
  const message = codecs.request.serialize(request);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/** Request headers of a chat completion, as Envoy sends them first. */
export const FIRST_MESSAGE: ProcessingRequest = {
  requestHeaders: {
    headers: {
      headers: [
        { key: ':method', rawValue: Buffer.from('POST') },
        { key: ':path', rawValue: Buffer.from('/v1/chat/completions') },
        { key: ':authority', rawValue: Buffer.from('gateway.example.com') },
        { key: 'content-type', rawValue: Buffer.from('application/json') },
      ],
    },
  },
};

const GRPC_HEADERS = {
  ':method': 'POST',
  ':path': PROCESS_METHOD_PATH,
  'content-type': 'application/grpc',
  te: 'trailers',
};

/**
 * `count` streams, each opened, sent `message` and closed with RST_STREAM `code` in the same tick (Envoy resets
 * with NO_ERROR), over node:http2 connections of at most 800 streams (Node's server answers a faster burst of
 * resets with GOAWAY, its rapid-reset protection). Resolves once every frame left the client; the connections stay
 * open (as Envoy's do) until `close()`. Node's own client streams reset this way with a write queued never
 * report 'close', so nothing here waits for them.
 */
export async function http2EarlyCancels(
  address: string,
  count: number,
  options: { code?: number; message?: ProcessingRequest } = {},
): Promise<{ close(): void }> {
  const frame = grpcFrame(options.message ?? FIRST_MESSAGE);
  const code = options.code ?? http2.constants.NGHTTP2_NO_ERROR;
  const sessions: http2.ClientHttp2Session[] = [];
  const requests: http2.ClientHttp2Stream[] = [];
  for (let sent = 0; sent < count; sent += 800) {
    const session = http2.connect(`http://${address}`);
    sessions.push(session);
    session.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    for (let i = sent; i < Math.min(count, sent + 800); i++) {
      const request = session.request(GRPC_HEADERS);
      request.on('error', () => {});
      request.resume();
      request.write(frame);
      request.close(code);
      requests.push(request);
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
    }
    while ((session.state.outboundQueueSize ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Node's client streams reset with a write queued stay open forever on the client side (the bug the server works
  // around); Envoy has no such leak, so they are destroyed here: the connections then behave as Envoy's would
  // (closed by the client once a GOAWAY arrives and no stream is open).
  for (const request of requests) if (!request.destroyed) request.destroy();
  return { close: () => sessions.forEach((session) => session.destroy()) };
}

function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman coding. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  if (n.length > 126 || v.length > 126) throw new Error('header too long for a one-byte HPACK length');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

const HEADERS = 0x1;
const DATA = 0x0;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const END_HEADERS = 0x4;

/**
 * `count` streams written as raw HTTP/2 frames on one TCP connection, each stream's HEADERS, DATA (the framed
 * message) and RST_STREAM `code` in one socket write, so the server reads them together. Resolves after the
 * server had `settleMs` to react; the connection is then closed.
 */
export async function rawEarlyCancels(
  port: number,
  count: number,
  options: { code?: number; message?: ProcessingRequest; settleMs?: number } = {},
): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume();
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(SETTINGS, 0, 0, Buffer.alloc(0))]),
  );
  // Pseudo-headers first, as HTTP/2 requires.
  const headers = Buffer.concat(
    Object.entries({ ':scheme': 'http', ':authority': 'processor', ...GRPC_HEADERS }).map(([k, v]) => literal(k, v)),
  );
  const frame = grpcFrame(options.message ?? FIRST_MESSAGE);
  const rst = Buffer.alloc(4);
  rst.writeUInt32BE(options.code ?? http2.constants.NGHTTP2_CANCEL);
  if (count > 800) throw new Error('one connection takes at most 800 resets (Node answers a faster burst with GOAWAY)');
  for (let i = 0; i < count; i++) {
    const id = 1 + 2 * i;
    socket.write(
      Buffer.concat([
        h2Frame(HEADERS, END_HEADERS, id, headers),
        h2Frame(DATA, 0, id, frame),
        h2Frame(RST_STREAM, 0, id, rst),
      ]),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 300));
  socket.destroy();
}
