/**
 * HTTP/2 conformance of the policy server on our own HTTP/2 server (http2/http2-server-connection.ts),
 * by h2spec (145 cases of RFC 7540 and RFC 7541), run in the same test against the same gRPC
 * transport on `node:http2` as the baseline. h2spec's requests are not gRPC (no content
 * type), so both answer them 415, trailers-only: the two "generic" cases that wait for a DATA
 * frame of the answer fail on both. The own server must fail no case the node:http2 one
 * passes, and keep serving after the run.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createGrpcServer, type GrpcMethod, type GrpcServer } from '../../policy-server/grpc-transport';
import { runH2spec, type Outcome } from '../support/h2spec';

const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';

function echoServer(implementation: 'own' | 'node'): GrpcServer {
  return createGrpcServer({
    http2: implementation,
    methods: new Map<string, GrpcMethod>([
      [CHECK_PATH, { kind: 'unary', handle: (request) => Buffer.from(request) }],
    ]),
  });
}

describe('policy server: HTTP/2 conformance of the own server (h2spec)', function () {
  this.timeout(180_000);
  let dir: string;
  const servers: GrpcServer[] = [];

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-h2spec-'));
  });
  after(async () => {
    for (const server of servers) server.forceShutdown();
    await Promise.all(servers.map((server) => server.shutdown()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails no case the transport on node:http2 passes, and serves on afterwards', async () => {
    const own = echoServer('own');
    const node = echoServer('node');
    servers.push(own, node);
    const [ownPort, nodePort] = await Promise.all([own.listen('127.0.0.1', 0), node.listen('127.0.0.1', 0)]);
    const [ownResults, baseline] = await Promise.all([
      runH2spec(ownPort, dir, 'own', CHECK_PATH),
      runH2spec(nodePort, dir, 'node-http2', CHECK_PATH),
    ]);
    assert.ok(baseline.size >= 140, `h2spec ran its cases against node:http2: ${baseline.size}`);
    assert.deepEqual([...ownResults.keys()], [...baseline.keys()], 'the same cases ran against both');
    const worse = [...baseline]
      .filter(([id, outcome]) => outcome.passed && !ownResults.get(id)!.passed)
      .map(([id]) => `${id}: ${(ownResults.get(id) as { detail: string }).detail.slice(0, 300)}`);
    assert.deepEqual(worse, [], 'cases node:http2 passes and the own server fails');
    const passed = (results: Map<string, Outcome>): number =>
      [...results.values()].filter((o) => o.passed).length;
    process.stdout.write(
      `      h2spec: own ${passed(ownResults)}/${ownResults.size}, node:http2 ${passed(baseline)}/${baseline.size}\n`,
    );
    assert.ok(passed(ownResults) >= passed(baseline), 'the own server passes at least as many cases');

    const session = http2.connect(`http://127.0.0.1:${ownPort}`);
    session.on('error', () => undefined);
    try {
      const status = await new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': CHECK_PATH,
          'content-type': 'application/grpc',
        });
        let grpcStatus: string | undefined;
        stream.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string));
        stream.on('error', reject);
        stream.resume();
        stream.on('close', () => resolve(grpcStatus));
        stream.end(Buffer.from([0, 0, 0, 0, 1, 42]));
      });
      assert.equal(status, '0', 'the own server still serves');
    } finally {
      session.destroy();
    }
  });
});
