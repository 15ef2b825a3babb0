import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { createRawProxy } from '../../../../bench/proxy/prototypes/raw-net';

// The raw prototype is a measurement aid, not the product; these tests make sure the figures
// in bench/proxy/README.md come from a proxy that forwards HTTP/1.1 correctly.

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Deterministic bytes: the same `length` always gives the same content. */
function pattern(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function send(
  port: number,
  path: string,
  options: {
    method?: string;
    body?: Buffer;
    chunked?: boolean;
    agent?: http.Agent;
    headers?: http.OutgoingHttpHeaders;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...options.headers };
    if (options.body !== undefined && !options.chunked) headers['content-length'] = options.body.length;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body !== undefined && options.chunked) {
      // Several writes, each its own chunk.
      for (let at = 0; at < options.body.length; at += 100_000)
        req.write(options.body.subarray(at, at + 100_000));
      req.end();
    } else req.end(options.body);
  });
}

/** Writes `bytes` on a fresh connection and collects everything until the proxy closes it. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.write(bytes, 'latin1');
  });
}

for (const upstreamOnread of [false, true]) {
  describe(`bench/proxy prototypes: raw net proxy (measurement aid)${upstreamOnread ? ', upstream read with onread' : ''}`, () => {
    let upstream: http.Server;
    let proxy: net.Server;
    let upstreamPort: number;
    let port: number;
    const upstreamPeers = new Set<number>();

    before(async () => {
      upstream = http.createServer((req, res) => {
        upstreamPeers.add(req.socket.remotePort!);
        const url = new URL(req.url!, 'http://x');
        const bytes = Number(url.searchParams.get('bytes') ?? '0');
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          switch (url.pathname) {
            case '/echo': {
              const info = Buffer.from(
                JSON.stringify({
                  method: req.method,
                  headers: req.headers,
                  length: body.length,
                  sha: sha(body),
                }),
              );
              res.writeHead(200, { 'content-type': 'application/json', 'content-length': info.length });
              res.end(info);
              return;
            }
            case '/length-down':
              res.writeHead(200, { 'content-length': bytes });
              res.end(pattern(bytes));
              return;
            case '/chunked-down': {
              res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked
              const data = pattern(bytes);
              for (let at = 0; at < data.length; at += 65_536) res.write(data.subarray(at, at + 65_536));
              res.end();
              return;
            }
            case '/no-content':
              res.writeHead(204);
              res.end();
              return;
            case '/closing':
              res.writeHead(200, { connection: 'close', 'content-length': 2 });
              res.end('ok');
              return;
            default:
              res.writeHead(404, { 'content-length': 0 });
              res.end();
          }
        });
      });
      upstream.keepAliveTimeout = 30_000;
      upstreamPort = await listen(upstream);
      proxy = createRawProxy({ host: '127.0.0.1', port: upstreamPort }, { addHeaders: true, upstreamOnread });
      port = await listen(proxy);
    });

    after(async () => {
      upstream.closeAllConnections();
      proxy.close();
      await close(upstream);
    });

    it('forwards a GET, adding x-forwarded-for, x-forwarded-proto and x-request-id, dropping hop-by-hop headers', async () => {
      const agent = new http.Agent({ keepAlive: true });
      try {
        const answer = await send(port, '/echo?x=1', {
          agent,
          headers: { 'keep-alive': 'timeout=5', 'x-mine': 'yes' },
        });
        assert.equal(answer.status, 200);
        const seen = JSON.parse(answer.body.toString()) as {
          method: string;
          headers: Record<string, string>;
        };
        assert.equal(seen.method, 'GET');
        assert.equal(seen.headers['x-mine'], 'yes');
        assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(seen.headers['x-forwarded-proto'], 'http');
        assert.match(seen.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
        assert.equal(seen.headers['keep-alive'], undefined);
        assert.equal(seen.headers['connection'], undefined);
        assert.equal(
          answer.headers['connection'],
          undefined,
          "the upstream's connection header is not passed on",
        );
        assert.equal(answer.headers['keep-alive'], undefined);
      } finally {
        agent.destroy();
      }
    });

    it('answers `connection: close` to a client that asked to close', async () => {
      const answer = await send(port, '/echo'); // agent: false sends Connection: close
      assert.equal(answer.status, 200);
      assert.equal(answer.headers['connection'], 'close');
    });

    it('passes a 3 MiB Content-Length upload and a 3 MiB chunked upload intact', async () => {
      const data = randomBytes(3 * 1024 * 1024);
      for (const chunked of [false, true]) {
        const answer = await send(port, '/echo', { method: 'POST', body: data, chunked });
        const seen = JSON.parse(answer.body.toString()) as {
          length: number;
          sha: string;
          headers: Record<string, string>;
        };
        assert.equal(seen.length, data.length, chunked ? 'chunked' : 'content-length');
        assert.equal(seen.sha, sha(data));
        assert.equal(seen.headers['transfer-encoding'], chunked ? 'chunked' : undefined);
      }
    });

    it('passes 3 MiB downloads intact, Content-Length and chunked', async () => {
      const size = 3 * 1024 * 1024 + 7;
      for (const path of ['/length-down', '/chunked-down']) {
        const answer = await send(port, `${path}?bytes=${size}`);
        assert.equal(answer.status, 200);
        assert.equal(answer.body.length, size, path);
        assert.equal(sha(answer.body), sha(pattern(size)), path);
      }
    });

    it('keeps the client connection and reuses pooled upstream connections', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        upstreamPeers.clear();
        const first = await send(port, '/echo', { agent });
        const second = await send(port, '/chunked-down?bytes=1000', { agent });
        const third = await send(port, '/echo', { agent });
        assert.deepEqual([first.status, second.status, third.status], [200, 200, 200]);
        assert.equal(upstreamPeers.size, 1, 'one upstream connection carried the three requests');
      } finally {
        agent.destroy();
      }
    });

    it('answers pipelined requests in order, then honours Connection: close', async () => {
      const text = await rawExchange(
        port,
        'GET /length-down?bytes=3 HTTP/1.1\r\nHost: x\r\n\r\n' +
          'HEAD /length-down?bytes=5 HTTP/1.1\r\nHost: x\r\n\r\n' +
          'GET /no-content HTTP/1.1\r\nHost: x\r\n\r\n' +
          'GET /length-down?bytes=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(statuses, ['200', '200', '204', '200']);
      assert.match(text, /connection: close\r\n\r\n[\s\S]{4}$/);
      assert.equal(text.endsWith(pattern(4).toString('latin1')), true);
    });

    it('does not reuse an upstream connection the upstream closes', async () => {
      upstreamPeers.clear();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        assert.equal((await send(port, '/closing', { agent })).body.toString(), 'ok');
        assert.equal((await send(port, '/closing', { agent })).body.toString(), 'ok');
        assert.equal(upstreamPeers.size, 2);
      } finally {
        agent.destroy();
      }
    });

    it('refuses a request with both Content-Length and Transfer-Encoding (400)', async () => {
      const text = await rawExchange(
        port,
        'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      );
      assert.match(text, /^HTTP\/1\.1 400 /);
    });

    it('answers 502 when the upstream is not there', async () => {
      const spare = net.createServer();
      const sparePort = await listen(spare);
      await close(spare); // nothing listens there now
      const orphan = createRawProxy(
        { host: '127.0.0.1', port: sparePort },
        { addHeaders: false, upstreamOnread },
      );
      const orphanPort = await listen(orphan);
      try {
        assert.equal((await send(orphanPort, '/')).status, 502);
      } finally {
        orphan.close();
      }
    });
  });
}
