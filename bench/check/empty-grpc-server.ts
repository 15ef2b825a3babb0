/**
 * The baseline of `npm run bench:check`: an empty gRPC unary handler on @grpc/grpc-js,
 * the transport our policy server runs on, registered the way it registers Check (raw
 * request bytes in, no decoding) and answering every call with an empty CheckResponse
 * (zero bytes). Run as a child process: `node dist/bench/check/empty-grpc-server.js
 * [HOST:PORT]` (default 127.0.0.1:0); prints `… listening on HOST:PORT`; stops on SIGTERM.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { handleUnaryCall } from '@grpc/grpc-js';

const address = process.argv[2] ?? '127.0.0.1:0';
const EMPTY_CHECK_RESPONSE = Buffer.alloc(0);

const server = new Server();
const check: handleUnaryCall<Buffer, Buffer> = (_call, callback) => callback(null, EMPTY_CHECK_RESPONSE);
server.register(
  '/istio.mixer.v1.Mixer/Check',
  check,
  (response: Buffer) => response,
  (bytes: Buffer) => bytes,
  'unary',
);
server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
  if (error !== null) {
    process.stderr.write(`empty-grpc-server: cannot listen on ${address}: ${error.message}\n`);
    process.exit(1);
  }
  const host = address.slice(0, address.lastIndexOf(':'));
  process.stdout.write(`empty grpc-js Check handler listening on ${host}:${port}\n`);
});
const stop = (): void => {
  server.tryShutdown(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
