/**
 * Byte tunnels through the proxy: WebSocket (HTTP/1.1 Upgrade) both directions with close
 * and resets propagated, an upstream's refusal relayed; plain TCP with half-close, and
 * what the proxy does when the upstream cannot be reached.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { REASON_HEADER } from '../../proxy';
import {
  clusterYaml,
  closeAllHarnesses,
  startProxy,
  waitFor,
  type ProxyHarness,
} from './support/proxy-harness';
import { startTcpEchoServer, type TcpEchoServer } from './support/upstreams';
import {
  connectWebSocket,
  OPCODE,
  startWebSocketEchoServer,
  type WebSocketEchoServer,
} from './support/websocket';

async function unusedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('proxy tunnels', function () {
  this.timeout(20_000);
  let ws: WebSocketEchoServer;
  let refusing: WebSocketEchoServer;
  let echo: TcpEchoServer;
  let harness: ProxyHarness;
  let dead: number;

  before(async () => {
    ws = await startWebSocketEchoServer();
    refusing = await startWebSocketEchoServer({ refuseWith: 403 });
    echo = await startTcpEchoServer();
    dead = await unusedPort();
    harness = await startProxy(`
listeners:
  - {name: http, role: outbound, address: 127.0.0.1, port: 0}
  - {name: tcp, role: outbound, address: 127.0.0.1, port: 0, protocol: tcp, cluster: echo}
  - {name: tcp-dead, role: outbound, address: 127.0.0.1, port: 0, protocol: tcp, cluster: dead}
  - {name: tcp-idle, role: outbound, address: 127.0.0.1, port: 0, protocol: tcp, cluster: echo, idleTimeout: 400ms}
routes:
  - match: {path: {prefix: /ws-idle}}
    cluster: ws
    idleTimeout: 400ms
  - match: {path: {prefix: /refused}}
    cluster: refusing
  - match: {path: {prefix: /ws-v2/}}
    rewrite: {pathPrefix: /socket/}
    cluster: ws
  - match: {path: {prefix: /nowhere}}
    cluster: dead
  - match: {path: {prefix: /ws}}
    cluster: ws
clusters:
${clusterYaml('ws', [ws.port])}${clusterYaml('refusing', [refusing.port])}${clusterYaml('echo', [echo.port])}${clusterYaml('dead', [dead])}`);
  });

  after(async () => {
    await closeAllHarnesses();
    await ws.close();
    await refusing.close();
    await echo.close();
  });

  describe('WebSocket', () => {
    it('upgrades through the proxy and echoes frames both ways', async () => {
      const client = await connectWebSocket(harness.port('http'), '/ws-v2/chat');
      assert.equal(
        client.responseHeaders['x-echo-path'],
        '/socket/chat',
        'the handshake was routed and rewritten',
      );
      for (const text of ['hello', 'world', 'x'.repeat(70_000)]) {
        client.send(OPCODE.text, text);
        const frame = await client.nextFrame();
        assert.equal(frame.opcode, OPCODE.text);
        assert.equal(frame.payload.toString(), text);
      }
      client.send(OPCODE.binary, Buffer.from([0, 1, 2, 255]));
      assert.deepEqual([...(await client.nextFrame()).payload], [0, 1, 2, 255]);
      client.send(OPCODE.close, Buffer.from([0x03, 0xe8]));
      const close = await client.nextFrame();
      assert.equal(close.opcode, OPCODE.close);
      assert.deepEqual([...close.payload], [0x03, 0xe8]);
      await client.closed;
      assert.equal(ws.closesReceived, 1);
    });

    it('closes the client side when the upstream connection drops', async () => {
      const before = ws.sockets.size;
      const client = await connectWebSocket(harness.port('http'), '/ws/drop');
      await waitFor('the upstream to hold the connection', () => ws.sockets.size === before + 1);
      for (const socket of ws.sockets) socket.destroy();
      await client.closed;
    });

    it('closes the upstream side when the client drops', async () => {
      const client = await connectWebSocket(harness.port('http'), '/ws/client-drops');
      await waitFor('the upstream to hold the connection', () => ws.sockets.size === 1);
      client.socket.destroy();
      await waitFor('the upstream connection to close', () => ws.sockets.size === 0);
    });

    it("closes a tunnel idle for the route's idleTimeout, both sides, and not one in use", async () => {
      const idleBefore = harness.proxy.stats().counters.reasons['stream-idle-timeout'] ?? 0;
      const upstreamBefore = ws.sockets.size;
      const client = await connectWebSocket(harness.port('http'), '/ws-idle');
      let closed = false;
      void client.closed.then(() => (closed = true));
      // Frames every 150 ms for 1.2 s: three times the timeout, never idle for it.
      for (let i = 0; i < 8; i++) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 150));
        client.send(OPCODE.text, `beat ${i}`);
        assert.equal((await client.nextFrame()).payload.toString(), `beat ${i}`);
      }
      const quiet = Date.now();
      assert.equal(closed, false, 'a tunnel in use stays open');
      await client.closed;
      const waited = Date.now() - quiet;
      assert.ok(waited >= 300 && waited < 3_000, `closed after ${waited} ms of silence`);
      await waitFor('the upstream side to close too', () => ws.sockets.size === upstreamBefore);
      assert.equal(harness.proxy.stats().counters.reasons['stream-idle-timeout'], idleBefore + 1);
    });

    it("relays an upstream's refusal of the upgrade", async () => {
      await assert.rejects(
        connectWebSocket(harness.port('http'), '/refused'),
        /^Error: HTTP\/1\.1 403 Refused[\s\S]*not here\n$/,
      );
    });

    it('answers 502 when the upstream cannot be reached', async () => {
      await assert.rejects(
        connectWebSocket(harness.port('http'), '/nowhere'),
        (error: Error) =>
          error.message.startsWith('HTTP/1.1 502') &&
          error.message.includes(`${REASON_HEADER}: upstream-connect-failure`),
      );
    });
  });

  describe('TCP', () => {
    it('echoes bytes both ways and passes a half-close on', async () => {
      const socket = net.connect({ host: '127.0.0.1', port: harness.port('tcp'), allowHalfOpen: true });
      const received: Buffer[] = [];
      const ended = new Promise<void>((resolve) => socket.on('end', () => resolve()));
      socket.on('data', (c: Buffer) => received.push(c));
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('ping ');
      await waitFor('the first echo', () => Buffer.concat(received).toString() === 'ping ');
      const big = Buffer.alloc(1024 * 1024, 7);
      socket.end(big);
      // The echo server ends its side when ours ends: the FIN went through the proxy and back.
      await ended;
      const all = Buffer.concat(received);
      assert.equal(all.length, 5 + big.length);
      assert.ok(all.subarray(5).equals(big));
      socket.destroy();
    });

    it("closes a connection idle for the listener's idleTimeout, and not one in use", async () => {
      const idleBefore = harness.proxy.stats().counters.reasons['stream-idle-timeout'] ?? 0;
      const socket = net.connect({ host: '127.0.0.1', port: harness.port('tcp-idle') });
      const received: Buffer[] = [];
      socket.on('data', (c: Buffer) => received.push(c));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise((resolve) => socket.once('connect', resolve));
      for (let i = 0; i < 8; i++) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 150));
        socket.write('.');
        await waitFor(`echo ${i}`, () => Buffer.concat(received).length === i + 1);
      }
      const quiet = Date.now();
      assert.equal(socket.destroyed, false, 'a connection in use stays open');
      await closed;
      const waited = Date.now() - quiet;
      assert.ok(waited >= 300 && waited < 3_000, `closed after ${waited} ms of silence`);
      assert.equal(harness.proxy.stats().counters.reasons['stream-idle-timeout'], idleBefore + 1);
    });

    it('closes the connection when the upstream cannot be reached', async () => {
      const socket = net.connect({ host: '127.0.0.1', port: harness.port('tcp-dead') });
      socket.on('error', () => undefined);
      let received = 0;
      socket.on('data', (c: Buffer) => (received += c.length));
      await new Promise((resolve) => socket.once('close', resolve));
      assert.equal(received, 0);
      await waitFor(
        'the proxy to count the failure',
        () => (harness.proxy.stats().counters.reasons['upstream-connect-failure'] ?? 0) >= 1,
      );
    });
  });
});
