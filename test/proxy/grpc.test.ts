/**
 * gRPC through the proxy: a real @grpc/grpc-js client speaking h2c to the proxy, the proxy
 * speaking HTTP/2 to a real @grpc/grpc-js server. Unary, server-streaming and bidirectional
 * calls, trailers, error statuses (trailers-only answers), and the proxy's own answers in
 * gRPC form. On both servers the h2c listener can run on: our own HTTP/2 server and
 * `node:http2` (`SWITCHBOARD_HTTP2_SERVER=node`).
 */
import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import {
  clusterYaml,
  closeAllHarnesses,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import { createEchoClient, startGrpcUpstream, type GrpcUpstream } from './support/upstreams';

type Callback = (error: grpc.ServiceError | null, value?: Buffer) => void;

for (const http2Server of ['own', 'node'] as const) describeGrpc(http2Server);

function describeGrpc(http2Server: 'own' | 'node'): void {
  describe(`proxy gRPC (${http2Server} HTTP/2 server)`, function () {
    this.timeout(20_000);
    let upstream: GrpcUpstream;
    let harness: ProxyHarness;
    let client: ReturnType<typeof createEchoClient>;
    let deadPort: number;

    before(async () => {
      upstream = await startGrpcUpstream();
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      deadPort = (probe.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      harness = await startProxy(
        `
listeners: [{name: grpc, role: outbound, address: 127.0.0.1, port: 0}]
routes:
  - match: {path: {prefix: /test.Echo/Fail}, headers: [{name: x-route, exact: gone}]}
    cluster: gone
  - match: {path: {prefix: /test.Echo/}}
    cluster: echo
clusters:
  - name: echo
    protocol: http2
    endpoints: [{host: 127.0.0.1, port: ${upstream.port}}]
${clusterYaml('gone', [deadPort])}`,
        { http2Server },
      );
      client = createEchoClient(`127.0.0.1:${harness.port()}`);
    });

    after(async () => {
      client.close();
      await closeAllHarnesses();
      await upstream.close();
    });

    const unary = (method: string, message: string, metadata = new grpc.Metadata()) =>
      new Promise<{ error: grpc.ServiceError | null; value?: Buffer; trailers?: grpc.Metadata }>(
        (resolve) => {
          let trailers: grpc.Metadata | undefined;
          const call = (
            client[method] as unknown as (m: Buffer, md: grpc.Metadata, cb: Callback) => grpc.ClientUnaryCall
          )(Buffer.from(message), metadata, (error, value) =>
            setImmediate(() => resolve({ error, value, trailers })),
          );
          call.on('status', (status: grpc.StatusObject) => (trailers = status.metadata));
        },
      );

    it('passes a unary call, its metadata and its trailers', async () => {
      const metadata = new grpc.Metadata();
      metadata.set('x-caller', 'test');
      const outcome = await unary('Unary', 'hello', metadata);
      assert.equal(outcome.error, null);
      assert.equal(outcome.value?.toString(), 'echo:hello');
      assert.deepEqual(outcome.trailers?.get('x-trailer'), ['unary']);
      const seen = upstream.calls.at(-1)!;
      assert.deepEqual(seen.get('x-caller'), ['test']);
      assert.equal(seen.get('x-request-id').length, 1, 'the proxy added a request id');
      assert.equal(
        seen.get('te').length,
        0,
        'te is not metadata, but it did reach the server: the call succeeded',
      );
    });

    it('streams a server-streaming call', async () => {
      const messages: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = (client['ServerStream'] as unknown as (m: Buffer) => grpc.ClientReadableStream<Buffer>)(
          Buffer.from('100'),
        );
        call.on('data', (m: Buffer) => messages.push(m.toString()));
        call.on('error', reject);
        call.on('status', (status: grpc.StatusObject) =>
          status.code === grpc.status.OK ? resolve() : reject(new Error(status.details)),
        );
      });
      assert.equal(messages.length, 100);
      assert.equal(messages[99], 'message 99');
    });

    it('streams a bidirectional call message by message', async () => {
      const call = (client['Bidi'] as unknown as () => grpc.ClientDuplexStream<Buffer, Buffer>)();
      const received: string[] = [];
      call.on('data', (m: Buffer) => received.push(m.toString()));
      const done = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => undefined);
      for (let i = 0; i < 5; i++) {
        call.write(Buffer.from(`m${i}`));
        // Each answer comes back before the next message is sent: the proxy buffers neither way.
        await waitFor(`echo of m${i}`, () => received.includes(`echo:m${i}`));
      }
      call.end();
      assert.equal((await done).code, grpc.status.OK);
      assert.deepEqual(received, ['echo:m0', 'echo:m1', 'echo:m2', 'echo:m3', 'echo:m4']);
    });

    it("passes the server's error status and message (a trailers-only answer)", async () => {
      const outcome = await unary('Fail', 'x');
      assert.equal(outcome.error?.code, grpc.status.NOT_FOUND);
      assert.equal(outcome.error?.details, 'no such thing');
    });

    it('answers UNAVAILABLE in gRPC form when the upstream cannot be reached', async () => {
      const metadata = new grpc.Metadata();
      metadata.set('x-route', 'gone');
      const outcome = await unary('Fail', 'x', metadata);
      assert.equal(outcome.error?.code, grpc.status.UNAVAILABLE);
      assert.match(
        outcome.error?.details ?? '',
        /^upstream connect error \(127\.0\.0\.1:\d+\): connect ECONNREFUSED/,
      );
      assert.deepEqual(outcome.error?.metadata.get('x-switchboard-reason'), ['upstream-connect-failure']);
    });
  });
}
