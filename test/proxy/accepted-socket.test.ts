/**
 * Accepted sockets read with `onread` into a shared buffer (proxy/accepted-socket.ts): bytes
 * reach the receiver, two connections sharing one buffer each get their own bytes, the stream
 * mode (no receiver) feeds 'data' and pipe, and the server's connection count comes back to
 * zero when the connections close (so `server.close` completes). Loopback sockets.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { AcceptedSocket, type ReceivedBytesSink } from '../../proxy/accepted-socket';

class Collector implements ReceivedBytesSink {
  text = '';
  onReceivedBytes(chunk: Buffer): void {
    this.text += chunk.toString('latin1');
  }
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(5);
  assert.ok(condition(), what);
}

describe('proxy accepted socket', () => {
  let server: net.Server;
  afterEach(() => server?.close());

  it('hands each connection its own bytes from one shared buffer, and gives the count back', async () => {
    const buffer = Buffer.alloc(64 * 1024);
    const collectors: Collector[] = [];
    const sockets: net.Socket[] = [];
    server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      const collector = new Collector();
      collectors.push(collector);
      sockets.push(new AcceptedSocket(accepted, buffer, collector).socket);
    });
    const port = await listen(server);
    const a = await connect(port);
    const b = await connect(port);
    await until(() => collectors.length === 2, 'both accepted');
    a.write('first from a;');
    b.write('first from b;');
    await sleep(20);
    a.write('second from a');
    b.write('second from b');
    await until(() => collectors.every((c) => c.text.includes('second')), 'both connections read twice');
    const texts = collectors.map((c) => c.text).sort();
    assert.deepEqual(texts, ['first from a;second from a', 'first from b;second from b']);
    a.destroy();
    b.destroy();
    await until(() => sockets.every((s) => s.destroyed), 'both closed');
    await new Promise<void>((resolve, reject) =>
      server.close((error) => (error === undefined ? resolve() : reject(error))),
    );
  });

  it('without a receiver, feeds the socket stream (data events, pipe)', async () => {
    server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      const reader = new AcceptedSocket(accepted, Buffer.alloc(1024), new Collector());
      reader.receiver = undefined;
      reader.socket.pipe(reader.socket); // echo
    });
    const port = await listen(server);
    const client = await connect(port);
    let echoed = '';
    client.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));
    const big = 'x'.repeat(200_000); // larger than the buffer: many reads, each copied
    client.write(big);
    await until(() => echoed.length === big.length, 'echoed whole');
    assert.equal(echoed, big);
    client.destroy();
  });
});
