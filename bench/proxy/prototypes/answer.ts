/**
 * MEASUREMENT AID, NOT THE PRODUCT (see bench/proxy/README.md). Not proxies: two servers that
 * answer every request with the upstream's fixed body themselves, one on node:http and one on
 * node:net with the raw prototype's head parsing. Loaded like a proxy, their CPU per request
 * prices the serving half of a proxy alone, on each stack.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { ChunkedScanner } from './chunked-scanner';
import { CHUNKED, LENGTH, parseRequestHead } from './raw-heads';

export function createHttpAnswer(body: string): http.Server {
  const bytes = Buffer.from(body, 'latin1');
  const headers = ['content-type', 'text/plain', 'content-length', String(bytes.length)];
  const server = http.createServer({ noDelay: true }, (req, res) => {
    req.resume();
    res.writeHead(200, headers);
    res.end(bytes);
  });
  server.keepAliveTimeout = 300_000;
  return server;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const NO_HEADERS = { enabled: false, clientAddress: '' };

/** Answers on bare sockets: the raw prototype's request parsing, one pre-built response. */
export function createRawAnswer(body: string): net.Server {
  const response = Buffer.from(
    `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`,
    'latin1',
  );
  return net.createServer({ noDelay: true }, (socket) => {
    let held: Buffer | null = null;
    let remaining = 0; // body bytes of a Content-Length request still to skip
    let chunks: ChunkedScanner | null = null; // set while skipping a chunked body
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      const buf = held === null ? chunk : Buffer.concat([held, chunk]);
      held = null;
      let at = 0;
      while (at < buf.length) {
        if (remaining > 0) {
          const take = Math.min(remaining, buf.length - at);
          remaining -= take;
          at += take;
          if (remaining === 0) socket.write(response);
          continue;
        }
        if (chunks !== null) {
          const end = chunks.scan(buf, at, buf.length);
          if (end < 0) return;
          chunks = null;
          at = end;
          socket.write(response);
          continue;
        }
        const end = buf.indexOf(HEAD_END, at);
        if (end < 0) {
          held = buf.subarray(at);
          return;
        }
        const head = parseRequestHead(buf.toString('latin1', at, end), NO_HEADERS);
        if (typeof head === 'string') {
          socket.destroy();
          return;
        }
        at = end + 4;
        if (head.framing === LENGTH) remaining = head.length;
        else if (head.framing === CHUNKED) chunks = new ChunkedScanner();
        else socket.write(response);
      }
    });
  });
}
