/**
 * Writes held to the end of a turn (proxy/turn-corks.ts), on real loopback sockets and a clock
 * the test moves: a write while the proxy is not busy leaves at once, writes soon after
 * another wait for `setImmediate`, `send` sends early, and a socket ended or corked again
 * within the turn comes out uncorked.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import * as net from 'node:net';
import { BUSY_GAP_MS, TurnCorks, type TurnCorkable } from '../../proxy/turn-corks';

/** The end of the current turn: after the turn's own `setImmediate`. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('proxy: writes held to the end of a turn', () => {
  let server: net.Server;
  const accepted: net.Socket[] = [];
  let nowMs = 0;
  let corks: TurnCorks;
  const corkForTurn = (owner: TurnCorkable): void => corks.cork(owner);
  const sendTurnWrites = (owner: TurnCorkable): void => corks.send(owner);

  beforeEach(() => {
    nowMs = 1000;
    corks = new TurnCorks(() => nowMs);
  });
  const owners: TurnCorkable[] = [];

  before(async () => {
    server = net.createServer((socket) => accepted.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  after(async () => {
    for (const socket of accepted) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => {
    for (const owner of owners.splice(0)) owner.socket.destroy();
  });

  /** A connected owner and the server's side of its connection. */
  async function connect(): Promise<TurnCorkable & { readonly peer: net.Socket }> {
    const peer = once(server, 'connection') as Promise<[net.Socket]>;
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    const owner = { socket, corkedForTurn: false, peer: (await peer)[0] };
    owners.push(owner);
    // A turn of its own: the writes below start a fresh one.
    await nextTurn();
    return owner;
  }

  it('sends a write at once when the one before was long ago', async () => {
    const first = await connect();
    const second = await connect();
    corkForTurn(first);
    first.socket.write('a', 'latin1');
    nowMs += BUSY_GAP_MS * 2;
    corkForTurn(second);
    second.socket.write('b', 'latin1');
    assert.equal(first.socket.writableLength + second.socket.writableLength, 0, 'both left at once');
    assert.equal(second.corkedForTurn, false);
  });

  it('sends the first write at once and holds those soon after it to the end of the turn', async () => {
    const first = await connect();
    const second = await connect();
    corkForTurn(first);
    first.socket.write('a', 'latin1');
    assert.equal(first.socket.writableLength, 0, 'the first write of the turn left at once');
    assert.equal(first.corkedForTurn, false);
    corkForTurn(second);
    second.socket.write('b', 'latin1');
    corkForTurn(second);
    second.socket.write('c', 'latin1');
    assert.equal(second.corkedForTurn, true);
    assert.equal(second.socket.writableLength, 2, 'held');
    await nextTurn();
    assert.equal(second.socket.writableLength, 0, 'sent at the end of the turn');
    assert.equal(second.socket.writableCorked, 0);
    assert.equal(second.corkedForTurn, false);
  });

  it('sends what a socket holds early on sendTurnWrites, and uncorks a socket corked again once', async () => {
    const first = await connect();
    const second = await connect();
    corkForTurn(first);
    first.socket.write('a', 'latin1');
    corkForTurn(second);
    second.socket.write('head', 'latin1');
    sendTurnWrites(second);
    assert.equal(second.socket.writableLength, 0);
    assert.equal(second.socket.writableCorked, 0);
    // Corked again in the same turn: listed twice, uncorked once.
    corkForTurn(second);
    second.socket.write('more', 'latin1');
    assert.equal(second.socket.writableCorked, 1);
    await nextTurn();
    assert.equal(second.socket.writableCorked, 0);
    assert.equal(second.socket.writableLength, 0);
  });

  it('leaves a socket ended or destroyed within the turn alone, its held bytes sent by end', async () => {
    const first = await connect();
    const ended = await connect();
    const destroyed = await connect();
    const peer = ended.peer;
    const received: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => received.push(chunk));
    corkForTurn(first);
    first.socket.write('a', 'latin1');
    corkForTurn(ended);
    ended.socket.write('last words', 'latin1');
    ended.socket.end();
    corkForTurn(destroyed);
    destroyed.socket.write('lost', 'latin1');
    destroyed.socket.destroy();
    await nextTurn();
    await once(peer, 'end');
    assert.equal(Buffer.concat(received).toString('latin1'), 'last words');
  });
});
