/**
 * A second baseline of `npm run bench:check`: an empty gRPC unary handler written on bare
 * `node:http2` (no gRPC library): it reads the request, answers HTTP 200 with one empty
 * gRPC message (an empty CheckResponse) and the trailer `grpc-status: 0`. It shows what a
 * leaner transport than @grpc/grpc-js could gain. `node dist/bench/check/empty-http2-server.js
 * [HOST:PORT]` (default 127.0.0.1:0); prints `… listening on HOST:PORT`; stops on SIGTERM.
 */
import * as http2 from 'node:http2';

const address = process.argv[2] ?? '127.0.0.1:0';
const colon = address.lastIndexOf(':');
const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
const port = Number(address.slice(colon + 1));

/** One gRPC message frame: not compressed, length 0 (an empty CheckResponse). */
const EMPTY_MESSAGE_FRAME = Buffer.from([0, 0, 0, 0, 0]);
const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS = { 'grpc-status': '0' };

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('error', (error) => process.stderr.write(`empty-http2-server: ${error.message}\n`));
server.on('session', (session) => session.on('error', () => session.destroy()));
server.on('stream', (stream, headers) => {
  stream.on('error', () => stream.destroy());
  if (headers[':path'] !== '/istio.mixer.v1.Mixer/Check') {
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' },
      { endStream: true },
    );
    return;
  }
  stream.on('data', () => undefined); // the request is read and ignored
  stream.on('end', () => {
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
    stream.end(EMPTY_MESSAGE_FRAME);
  });
});
server.listen(port, host, () => {
  const bound = server.address();
  const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
  process.stdout.write(
    `empty node:http2 Check handler listening on ${address.slice(0, colon)}:${boundPort}\n`,
  );
});
const stop = (): void => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
