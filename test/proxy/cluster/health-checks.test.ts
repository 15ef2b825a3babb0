/**
 * Active health checks against real servers on 127.0.0.1: intervals of tens of milliseconds,
 * and every wait is a poll with a deadline.
 */
import { strict as assert } from 'node:assert';
import { createCluster, HEALTH_CHECK_USER_AGENT, type Cluster } from '../../../proxy/cluster';
import {
  closedPort,
  clusterConfig,
  startHttpUpstream,
  startTcpUpstream,
  tally,
  waitFor,
  type TestUpstream,
} from './support';

describe('proxy/cluster: active health checks', () => {
  const clusters: Cluster[] = [];
  const upstreams: TestUpstream[] = [];

  function start(yaml: string): Cluster {
    const cluster = createCluster(clusterConfig(yaml));
    clusters.push(cluster);
    return cluster;
  }

  async function upstream<T extends TestUpstream>(started: Promise<T>): Promise<T> {
    const server = await started;
    upstreams.push(server);
    return server;
  }

  afterEach(async () => {
    await Promise.all(clusters.map((cluster) => cluster.close()));
    await Promise.all(upstreams.map((server) => server.close()));
    clusters.length = 0;
    upstreams.length = 0;
  });

  const healthy = (cluster: Cluster): number => cluster.stats().healthyEndpoints;

  it('starts every endpoint healthy and sends the first checks at once, as GETs of the path to host:port', async () => {
    const server = await upstream(startHttpUpstream());
    const port = await closedPort();
    const cluster = start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${server.port} }, { host: 127.0.0.1, port: ${port} }]
healthCheck: { intervalMs: 60000, http: { path: /healthz?probe=1 } }
`);
    // Healthy before any verdict, even the endpoint nobody listens on.
    assert.equal(healthy(cluster), 2);
    await waitFor('the first check', () => server.received === 1);
    assert.deepEqual(
      [server.hosts[0], server.userAgents[0], server.paths[0]],
      [`127.0.0.1:${server.port}`, HEALTH_CHECK_USER_AGENT, '/healthz?probe=1'],
    );
  });

  it('takes an endpoint out after unhealthyThreshold failed checks and back after healthyThreshold passed ones', async () => {
    const good = await upstream(startHttpUpstream());
    const flaky = await upstream(startHttpUpstream());
    const cluster = start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${good.port} }, { host: 127.0.0.1, port: ${flaky.port} }]
healthCheck: { intervalMs: 10, timeoutMs: 1000, unhealthyThreshold: 3, healthyThreshold: 2, http: { path: /healthz } }
`);
    await waitFor('checks of the flaky endpoint', () => flaky.received >= 2);
    assert.equal(healthy(cluster), 2);

    flaky.status = 503;
    const failingFrom = flaky.received;
    await waitFor('the flaky endpoint to be unhealthy', () => healthy(cluster) === 1);
    assert.ok(flaky.received - failingFrom >= 3, `out after ${flaky.received - failingFrom} failed checks`);
    const picks = tally(Array.from({ length: 20 }, () => cluster.pick()!.id));
    assert.deepEqual([...picks], [[`127.0.0.1:${good.port}`, 20]]);

    flaky.status = 200;
    const passingFrom = flaky.received;
    await waitFor('the flaky endpoint to be healthy again', () => healthy(cluster) === 2);
    assert.ok(flaky.received - passingFrom >= 2, `back after ${flaky.received - passingFrom} passed checks`);
  });

  it('passes only the expected statuses', async () => {
    const server = await upstream(startHttpUpstream({ status: 204 }));
    const expects200 = start(`
name: a
endpoints: [{ host: 127.0.0.1, port: ${server.port} }]
healthCheck: { intervalMs: 10, unhealthyThreshold: 2, http: { path: /a } }
`);
    const expects204 = start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${server.port} }]
healthCheck: { intervalMs: 10, unhealthyThreshold: 2, http: { path: /b, expectedStatuses: [200, 204] } }
`);
    await waitFor('the 200-only check to fail', () => healthy(expects200) === 0);
    await waitFor(
      'several checks of the 204-accepting cluster',
      () => server.paths.filter((p) => p === '/b').length >= 4,
    );
    assert.equal(healthy(expects204), 1);
  });

  it('fails a check that outlasts timeoutMs, and never has two checks of an endpoint in flight', async () => {
    const server = await upstream(startHttpUpstream({ status: undefined }));
    const cluster = start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${server.port} }]
healthCheck: { intervalMs: 5, timeoutMs: 40, unhealthyThreshold: 2, http: { path: /slow } }
`);
    await waitFor('the hanging endpoint to be unhealthy', () => healthy(cluster) === 0);
    await waitFor('a third check', () => server.received >= 3);
    assert.equal(server.maxInFlight, 1);
  });

  it('checks by TCP connect without http, and takes out an endpoint that stops accepting', async () => {
    const server = await upstream(startTcpUpstream());
    const cluster = start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${server.port} }]
healthCheck: { intervalMs: 10, unhealthyThreshold: 2, healthyThreshold: 1 }
`);
    await waitFor('connect checks', () => server.received >= 3);
    assert.equal(healthy(cluster), 1);
    await server.close();
    await waitFor('the closed endpoint to be unhealthy', () => healthy(cluster) === 0);
  });

  it('checks an http2 cluster over HTTP/2 with prior knowledge', async () => {
    const server = await upstream(startHttpUpstream({ http2: true }));
    const cluster = start(`
name: grpc
protocol: http2
endpoints: [{ host: 127.0.0.1, port: ${server.port} }]
healthCheck: { intervalMs: 10, unhealthyThreshold: 2, healthyThreshold: 1, http: { path: /grpc.health.v1.Health } }
`);
    await waitFor('HTTP/2 checks', () => server.received >= 2);
    assert.deepEqual(
      [server.hosts[0], server.paths[0], healthy(cluster)],
      [`127.0.0.1:${server.port}`, '/grpc.health.v1.Health', 1],
    );
    server.status = 503;
    await waitFor('the HTTP/2 endpoint to be unhealthy', () => healthy(cluster) === 0);
    server.status = 200;
    await waitFor('the HTTP/2 endpoint to be healthy again', () => healthy(cluster) === 1);
  });

  it('fails HTTP/2 checks of an endpoint that speaks only HTTP/1.1', async () => {
    const server = await upstream(startHttpUpstream());
    const cluster = start(`
name: b
protocol: http2
endpoints: [{ host: 127.0.0.1, port: ${server.port} }]
healthCheck: { intervalMs: 10, timeoutMs: 500, unhealthyThreshold: 2, http: { path: /healthz } }
`);
    await waitFor('the HTTP/1.1-only endpoint to be unhealthy', () => healthy(cluster) === 0);
  });

  it('falls into panic mode when every endpoint fails its checks, and balances across all of them', async () => {
    const ports = [await closedPort(), await closedPort()];
    const cluster = start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${ports[0]} }, { host: 127.0.0.1, port: ${ports[1]} }]
healthCheck: { intervalMs: 10, unhealthyThreshold: 1 }
`);
    await waitFor('both endpoints to be unhealthy', () => healthy(cluster) === 0);
    const picks = tally(Array.from({ length: 10 }, () => cluster.pick()!.id));
    assert.deepEqual([...picks.values()], [5, 5]);
    assert.equal(cluster.stats().panicPicks, 10);
  });

  it('stops checking when closed', async () => {
    const closing = await upstream(startHttpUpstream());
    const running = await upstream(startHttpUpstream());
    const closed = start(`
name: a
endpoints: [{ host: 127.0.0.1, port: ${closing.port} }]
healthCheck: { intervalMs: 10, http: { path: /healthz } }
`);
    await waitFor('checks before close', () => closing.received >= 2);
    await closed.close();
    const atClose = closing.received;
    // Wait on a second cluster's checks rather than a fixed time: five of its intervals pass.
    start(`
name: b
endpoints: [{ host: 127.0.0.1, port: ${running.port} }]
healthCheck: { intervalMs: 10, http: { path: /healthz } }
`);
    await waitFor('checks of the running cluster', () => running.received >= 5);
    // A check already on the wire at close may still arrive; no new one is sent.
    assert.ok(closing.received <= atClose + 1, `${closing.received - atClose} checks after close`);
  });
});
