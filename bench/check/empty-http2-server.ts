/**
 * The baseline of `npm run bench:check` and `npm run bench:report`: empty gRPC unary handlers
 * on the policy server's own transport (policy-server/grpc-transport.ts: its own HTTP/2, or node:http2 with
 * BENCH_EMPTY_HTTP2=node),
 * answering every Check and Report with an empty response — the cost of the transport alone,
 * so that ours / this is the cost of the policy work. `node dist/bench/check/empty-http2-server.js [HOST:PORT]`
 * (default 127.0.0.1:0); prints `… listening on HOST:PORT`; stops on SIGTERM.
 */
import { createGrpcServer } from '../../policy-server/grpc-transport';

const address = process.argv[2] ?? '127.0.0.1:0';
const colon = address.lastIndexOf(':');
const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
const port = Number(address.slice(colon + 1));

/** An empty CheckResponse or ReportResponse has no fields, so no bytes. */
const EMPTY_RESPONSE = new Uint8Array(0);

const server = createGrpcServer({
  http2: process.env.BENCH_EMPTY_HTTP2 === 'node' ? 'node' : 'own',
  methods: new Map([
    ['/istio.mixer.v1.Mixer/Check', { kind: 'unary', handle: () => EMPTY_RESPONSE }],
    ['/istio.mixer.v1.Mixer/Report', { kind: 'unary', handle: () => EMPTY_RESPONSE }],
  ]),
  onError: (error) => process.stderr.write(`empty-http2-server: ${error.message}\n`),
});
server.listen(host, port).then(
  (boundPort) =>
    process.stdout.write(
      `empty Check and Report handlers on the gRPC transport listening on ${address.slice(0, colon)}:${boundPort}\n`,
    ),
  (error: unknown) => {
    process.stderr.write(`empty-http2-server: ${String(error)}\n`);
    process.exit(1);
  },
);
const stop = (): void => {
  void server.shutdown().then(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
