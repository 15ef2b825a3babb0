/**
 * What the cluster hears of each attempt, through a real proxy: an attempt the proxy gives up
 * (the client reset) stops counting as under way for least-request, and is no failure of the
 * endpoint; a response that breaks off mid-body counts as a gateway error for outlier
 * detection.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import {
  closeAllHarnesses,
  clusterYaml,
  request,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import { echoHandler, startHttpUpstream, type HttpUpstream } from './support/upstreams';

interface ClusterCounts {
  readonly activeRequests: number;
  readonly ejections: number;
  readonly ejectedEndpoints: number;
}

function counts(proxy: ProxyHarness): ClusterCounts {
  return proxy.proxy.stats().clusters['up'] as ClusterCounts;
}

describe('proxy attempt accounting (least-request and outlier detection)', function () {
  this.timeout(20_000);
  let upstream: HttpUpstream;

  before(async () => {
    upstream = await startHttpUpstream();
  });
  after(async () => {
    await upstream.close();
  });
  afterEach(async () => {
    upstream.handle(echoHandler('upstream'));
    await closeAllHarnesses();
  });

  const yaml = (clusterExtra: string): string => `
listeners:
  - {name: in, role: inbound, address: 127.0.0.1, port: 0}
routes:
  - cluster: up
clusters:
${clusterYaml('up', [upstream.port], clusterExtra)}`;

  it('an attempt given up because the client left is not counted as under way any more', async () => {
    // Without that, least-request would see the endpoint busier with every client that leaves.
    const proxy = await startProxy(yaml(''));
    const held: Array<() => void> = [];
    upstream.handle((_req, res) => held.push(() => res.end('late')));
    try {
      const socket = net.connect(proxy.port(), '127.0.0.1', () =>
        socket.write('GET /hold HTTP/1.1\r\nhost: a\r\n\r\n'),
      );
      socket.on('error', () => undefined);
      await waitFor('the request reaches the upstream', () => held.length === 1);
      assert.equal(counts(proxy).activeRequests, 1);
      socket.resetAndDestroy(); // gone, not half-closed (which still waits for the answer)
      await waitFor('the given-up attempt is no longer counted', () => counts(proxy).activeRequests === 0);
      assert.equal(counts(proxy).ejections, 0);
    } finally {
      for (const release of held) release();
    }
  });

  it('a response cut mid-body counts as a gateway error for outlier detection', async () => {
    // Its head counted as a 200 first, which ends any streak: only a threshold of 1 ejects on it.
    const proxy = await startProxy(
      yaml(
        '    outlierDetection: {consecutiveGatewayErrors: 1, consecutive5xx: 100, maxEjectionPercent: 100}\n',
      ),
    );
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    await assert.rejects(request(proxy.port()), 'the cut reaches the client');
    await waitFor('the endpoint is ejected', () => counts(proxy).ejections === 1);
    assert.equal(counts(proxy).ejectedEndpoints, 1);
    assert.equal(counts(proxy).activeRequests, 0);
  });
});
