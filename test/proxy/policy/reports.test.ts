/**
 * How the policy client sends Reports, seen from a stand-in policy server that records each
 * call's metadata and attributes and refuses on demand: report ids (the same id when the
 * same batch is sent again), TCP reports on open, while open and on close.
 */
import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { AttributeBag, decodeReportRequest, type StringMap } from '../../../attributes';
import type { ProxyConfig } from '../../../proxy/config-model';
import { PolicyClient, REPORT_ID_HEADER } from '../../../proxy/policy/policy-client';
import * as net from 'node:net';
import { closeAllHarnesses, clusterYaml, startProxy, waitFor } from '../support/proxy-harness';
import { requestFacts } from '../support/request-facts';
import { startTcpEchoServer } from '../support/upstreams';

interface SeenReport {
  readonly id: string | undefined;
  readonly bags: AttributeBag[];
  readonly answered: number;
}

/** Answers Reports with `nextStatus()` (0: OK), recording each. */
async function startReportSink(nextStatus: () => number) {
  const seen: SeenReport[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const status = nextStatus();
      const id = headers[REPORT_ID_HEADER];
      seen.push({
        id: typeof id === 'string' ? id : undefined,
        bags: decodeReportRequest(body.subarray(5)),
        answered: status,
      });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': String(status), 'grpc-message': 'no' }),
      );
      stream.end(status === 0 ? Buffer.alloc(5) : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const config = (policy: Record<string, unknown>): ProxyConfig => ({ policy }) as unknown as ProxyConfig;

describe('proxy: Reports as the policy client sends them', function () {
  this.timeout(20_000);
  let sink: Awaited<ReturnType<typeof startReportSink>> | undefined;
  let client: PolicyClient | undefined;
  afterEach(async () => {
    await closeAllHarnesses();
    await client?.close();
    await sink?.close();
  });

  it('gives every batch a 128-bit report id, and sends a refused batch again whole with the same id', async () => {
    const statuses = [14, 14, 0, 0];
    sink = await startReportSink(() => statuses.shift() ?? 0);
    client = new PolicyClient();
    client.configurationApplied(
      config({ server: sink.address, reportBatchEntries: 3, reportBatchDelayMs: 10 }),
    );
    for (let i = 0; i < 5; i++) client.requestCompleted(requestFacts({ url: `/r/${i}` }), undefined);
    await waitFor('both batches delivered', () => client!.stats.reportsSent === 5);
    const seen = sink.seen;
    const paths = (r: SeenReport): unknown[] => r.bags.map((b) => b.get('request.path'));
    assert.deepEqual(
      seen.map((r) => r.answered),
      [14, 14, 0, 0],
    );
    for (const r of seen) assert.match(r.id ?? '', /^[0-9a-f]{32}$/);
    // The first batch was refused twice, then taken: three sends, one id, the same records.
    assert.equal(seen[1]!.id, seen[0]!.id);
    assert.equal(seen[2]!.id, seen[0]!.id);
    assert.deepEqual(paths(seen[2]!), ['/r/0', '/r/1', '/r/2']);
    assert.deepEqual(paths(seen[0]!), paths(seen[2]!));
    // The next batch is another one: a new id.
    assert.notEqual(seen[3]!.id, seen[0]!.id);
    assert.deepEqual(paths(seen[3]!), ['/r/3', '/r/4']);
    assert.equal(client.stats.reportBatchesFailed, 2);
    assert.equal(client.stats.reportsDropped, 0);
  });

  it('sends a full batch while requests keep coming faster than a timer tick, and drops the oldest beyond the buffer', async () => {
    sink = await startReportSink(() => 0);
    client = new PolicyClient();
    client.configurationApplied(
      config({ server: sink.address, reportBatchEntries: 10, reportBatchDelayMs: 60_000 }),
    );
    // A record per turn of the event loop, far faster than 1 ms apart, for 300 ms: a full
    // batch must leave meanwhile, not wait for a quiet moment.
    const until = Date.now() + 300;
    let queued = 0;
    while (Date.now() < until) {
      client.requestCompleted(requestFacts({ url: `/r/${queued++}` }), undefined);
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(client.stats.reportBatchesSent > 0, `no batch sent while ${queued} records were queued`);
    await waitFor('every full batch delivered', () => client!.stats.reportsSent >= queued - (queued % 10));
    assert.equal(client.stats.reportsDropped, 0);
    // Beyond the buffer (the server refusing everything): the oldest waiting records go, counted.
    await client.close();
    await sink.close();
    sink = await startReportSink(() => 14);
    client = new PolicyClient();
    client.configurationApplied(
      config({
        server: sink.address,
        reportBatchEntries: 5,
        reportBatchDelayMs: 60_000,
        reportBufferEntries: 20,
      }),
    );
    for (let i = 0; i < 2_000; i++) client.requestCompleted(requestFacts({ url: `/d/${i}` }), undefined);
    assert.equal(client.stats.reportsDropped, 1_980);
    assert.equal(client.view().reportsPending, 20);
  });

  it('never lends a record an attribute of the one before: a record that drops one starts a new batch', async () => {
    sink = await startReportSink(() => 0);
    client = new PolicyClient();
    client.configurationApplied(
      config({ server: sink.address, reportBatchEntries: 100, reportBatchDelayMs: 20 }),
    );
    // A request with a query has request.query_params; one without, none.
    const records: [string, string | undefined][] = [
      ['/a', '1'],
      ['/b', '2'],
      ['/c', undefined],
      ['/d', '3'],
      ['/e', undefined],
      ['/f', undefined],
    ];
    for (const [path, q] of records) {
      client.requestCompleted(requestFacts({ url: q === undefined ? path : `${path}?q=${q}` }), undefined);
    }
    await waitFor('every record delivered', () => client!.stats.reportsSent === records.length);
    const received = sink.seen.flatMap((r) =>
      r.bags.map((b) => {
        const query = b.get('request.query_params');
        return [b.get('request.url_path'), query === undefined ? undefined : (query as StringMap).get('q')];
      }),
    );
    assert.deepEqual(received, records);
    // Batches end where a record lacks what the one before had: [/a /b] [/c /d] [/e /f].
    assert.deepEqual(
      sink.seen.map((r) => r.bags.length),
      [2, 2, 2],
    );
  });

  it('drops and counts a record it cannot encode, logs why, and reports the others', async () => {
    sink = await startReportSink(() => 0);
    const logged: string[] = [];
    client = new PolicyClient((line) => logged.push(line));
    client.configurationApplied(
      config({ server: sink.address, reportBatchEntries: 10, reportBatchDelayMs: 20 }),
    );
    // Requests are written from their facts, which always encode; a TCP report is a bag.
    client.connectionClosed(new AttributeBag([['request.path', '/before']]));
    const odd = new AttributeBag([['request.path', '/odd']]);
    odd.set('request.size', 2n ** 64n); // beyond INT64
    client.connectionClosed(odd);
    client.connectionClosed(new AttributeBag([['request.path', '/after']]));
    await waitFor('the others delivered', () => client!.stats.reportsSent === 2);
    assert.equal(client.stats.reportsDropped, 1);
    assert.match(
      logged.join('\n'),
      /report not queued: attribute request\.size: \d+ does not fit in a signed 64-bit integer/,
    );
    assert.deepEqual(
      sink.seen.flatMap((r) => r.bags.map((b) => b.get('request.path'))),
      ['/before', '/after'],
    );
  });

  it('reports a TCP connection on open, while it stays open, and on close with byte deltas', async () => {
    sink = await startReportSink(() => 0);
    client = new PolicyClient();
    client.configurationApplied(
      config({ server: sink.address, reportBatchEntries: 1, reportBatchDelayMs: 0, tcpReportIntervalMs: 30 }),
    );
    let received = 100n;
    const bagAt = (event: string): AttributeBag =>
      new AttributeBag([
        ['connection.id', 'c-1'],
        ['connection.event', event],
        ['connection.received.bytes', received],
        ['connection.received.bytes_total', received],
        ['connection.sent.bytes', 0n],
        ['connection.sent.bytes_total', 0n],
      ]);
    client.connectionOpened(bagAt('open'), () => {
      received += 50n;
      return bagAt('continue');
    });
    await waitFor('two periodic reports', () => client!.stats.tcpReports >= 3);
    client.connectionClosed(bagAt('close'));
    await waitFor('all delivered', () => client!.stats.reportsSent === client!.stats.tcpReports);
    const events = sink.seen
      .flatMap((r) => r.bags)
      .map((b) => [b.get('connection.event'), b.get('connection.received.bytes')]);
    assert.deepEqual(events[0], ['open', 100n]);
    assert.deepEqual(events[1], ['continue', 50n]);
    assert.deepEqual(events[2], ['continue', 50n]);
    assert.equal(events[events.length - 1]![0], 'close');
    assert.equal(events[events.length - 1]![1], 0n, 'nothing new since the last continue');
    const reportsBefore = client.stats.tcpReports;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(client.stats.tcpReports, reportsBefore, 'no reports after close');
  });

  it('through a real TCP listener: open, continue while bytes flow, close with the rest', async () => {
    sink = await startReportSink(() => 0);
    const echo = await startTcpEchoServer();
    const hook = new PolicyClient();
    const harness = await startProxy(
      `
listeners: [{name: tcp, role: outbound, address: 127.0.0.1, port: 0, protocol: tcp, cluster: echo}]
clusters:
${clusterYaml('echo', [echo.port])}
policy: { server: ${sink.address}, reportBatchEntries: 1, reportBatchDelayMs: 0, tcpReportIntervalMs: 40 }
`,
      { hook },
    );
    try {
      const socket = net.connect({ host: '127.0.0.1', port: harness.port('tcp') });
      let echoed = 0;
      socket.on('data', (c: Buffer) => (echoed += c.length));
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(Buffer.alloc(1000, 1));
      await waitFor('a continue report', () =>
        sink!.seen.some((r) => r.bags.some((b) => b.get('connection.event') === 'continue')),
      );
      socket.write(Buffer.alloc(500, 2));
      await waitFor('the echo', () => echoed === 1500);
      socket.end();
      await waitFor('the close report', () =>
        sink!.seen.some((r) => r.bags.some((b) => b.get('connection.event') === 'close')),
      );
      const bags = sink.seen.flatMap((r) => r.bags);
      assert.equal(bags[0]!.get('connection.event'), 'open');
      assert.equal(bags[bags.length - 1]!.get('connection.event'), 'close');
      assert.ok(bags.every((b) => b.get('connection.id') === bags[0]!.get('connection.id')));
      // The deltas add up to the total the close reports.
      const received = bags.reduce((sum, b) => sum + (b.get('connection.received.bytes') as bigint), 0n);
      assert.equal(received, 1500n);
      assert.equal(bags[bags.length - 1]!.get('connection.received.bytes_total'), 1500n);
    } finally {
      await harness.close();
      await echo.close();
    }
  });
});
