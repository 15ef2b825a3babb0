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
  clusterStats,
  clusterYaml,
  request,
  startProxy,
  waitFor,
} from './support/proxy-harness';
import { echoHandler, startHttpUpstream, type HttpUpstream } from './support/upstreams';

/** Outlier detection that ejects on one failure: an attempt wrongly charged would show. */
const EJECT_ON_ONE =
  '    outlierDetection: {consecutiveGatewayErrors: 1, consecutive5xx: 1, maxEjectionPercent: 100}\n';

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
    const proxy = await startProxy(yaml(EJECT_ON_ONE));
    const held: Array<() => void> = [];
    upstream.handle((_req, res) => held.push(() => res.end('late')));
    try {
      const socket = net.connect(proxy.port(), '127.0.0.1', () =>
        socket.write('GET /hold HTTP/1.1\r\nhost: a\r\n\r\n'),
      );
      socket.on('error', () => undefined);
      await waitFor('the request reaches the upstream', () => held.length === 1);
      assert.equal(clusterStats(proxy).activeRequests, 1);
      socket.resetAndDestroy(); // gone, not half-closed (which still waits for the answer)
      await waitFor(
        'the given-up attempt is no longer counted',
        () => clusterStats(proxy).activeRequests === 0,
      );
      assert.equal(clusterStats(proxy).ejections, 0, 'a client that left is no failure of the endpoint');
    } finally {
      for (const release of held) release();
    }
  });

  it('a response cut mid-body counts as a gateway error for outlier detection, and its attempt is done once', async () => {
    // Its head counted as a 200 first, which ends any streak: only a threshold of 1 ejects on it.
    const proxy = await startProxy(yaml(EJECT_ON_ONE));
    const held: Array<() => void> = [];
    upstream.handle((req, res) => {
      if (req.url === '/hold') {
        held.push(() => res.end('late'));
        return;
      }
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    try {
      // One attempt held under way: counting the cut attempt done twice would take it off.
      const holding = request(proxy.port(), { path: '/hold' });
      await waitFor('the held request reaches the upstream', () => held.length === 1);
      await assert.rejects(request(proxy.port(), { path: '/cut' }), 'the cut reaches the client');
      await waitFor('the endpoint is ejected', () => clusterStats(proxy).ejections === 1);
      assert.equal(clusterStats(proxy).ejectedEndpoints, 1);
      assert.equal(clusterStats(proxy).activeRequests, 1, 'the held attempt is still counted');
      held[0]!();
      assert.equal((await holding).status, 200);
      assert.equal(clusterStats(proxy).activeRequests, 0);
    } finally {
      for (const release of held) release();
    }
  });
});
