/**
 * MEASUREMENT AID, NOT THE PRODUCT (see bench/proxy/README.md). Gives the raw prototype an
 * h2c side so the harness can measure HTTP/2 through the Switchboard stand-in: node:http2
 * streams forwarded to the HTTP/1.1 upstream through a keep-alive node:http Agent. No
 * tuning beyond that — the prototypes are about the HTTP/1.1 path.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Upstream } from './upstream';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
]);

/** A function taking connections that opened with the HTTP/2 preface (already pushed back). */
export function createH2cBridge(upstream: Upstream): (socket: net.Socket) => void {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const outgoing: http.OutgoingHttpHeaders = {};
    for (const name of Object.keys(headers)) {
      if (name.charCodeAt(0) === 0x3a /* : */ || HOP_BY_HOP.has(name)) continue;
      outgoing[name] = headers[name];
    }
    outgoing['host'] = headers[':authority'] ?? `${upstream.host}:${upstream.port}`;
    const forward = http.request(
      {
        host: upstream.host,
        port: upstream.port,
        method: headers[':method'],
        path: headers[':path'],
        headers: outgoing,
        agent,
      },
      (answer) => {
        if (stream.destroyed) {
          answer.resume(); // the client went away: drain and drop
          return;
        }
        const back: http2.OutgoingHttpHeaders = { ':status': answer.statusCode ?? 502 };
        for (const name of Object.keys(answer.headers))
          if (!HOP_BY_HOP.has(name)) back[name] = answer.headers[name];
        stream.respond(back);
        answer.pipe(stream);
      },
    );
    forward.on('error', () => {
      if (stream.destroyed) return;
      if (!stream.headersSent) stream.respond({ ':status': 502 });
      stream.end();
    });
    stream.on('error', () => forward.destroy());
    stream.pipe(forward);
  });
  server.on('sessionError', () => {});
  return (socket) => {
    server.emit('connection', socket);
  };
}
