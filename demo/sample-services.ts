/**
 * The demo mesh's two sample services, plain Node HTTP servers that know nothing of policy:
 *
 * - `frontend` — `GET /shop` lists the catalog's items, `POST /review/{id}` posts a review
 *   to the catalog, `GET /admin/{op}` passes an admin call on to the catalog. It calls the
 *   catalog as `http://catalog` through its outbound proxy, passing the caller's `x-user`
 *   and `x-group` on, and relays the catalog's refusals (status, body, Retry-After).
 * - `catalog` — `GET /api/items` (with stock levels it asks of `stock` through its own
 *   outbound proxy), `POST /api/reviews/{id}`, `GET /admin/{op}`.
 */
import * as http from 'node:http';

export interface SampleService {
  readonly name: string;
  readonly port: number;
  /** Requests the service itself answered (those the proxies refused never get here). */
  readonly served: number;
  close(): Promise<void>;
}

const ITEMS = [
  { id: 1, name: 'lamp' },
  { id: 2, name: 'chair' },
  { id: 3, name: 'rug' },
];

/** The catalog; `outboundPort` is its outbound proxy (for `stock`). */
export function startCatalog(port: number, outboundPort: number): Promise<SampleService> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  return serve('catalog', port, agent, async (req, body) => {
    const path = req.url ?? '/';
    if (req.method === 'GET' && path === '/api/items') {
      const stock = await call(agent, outboundPort, 'stock', 'GET', '/levels', req);
      const levels = stock.status === 200 ? (JSON.parse(stock.body) as Record<string, number>) : {};
      const items = ITEMS.map((item) => ({ ...item, inStock: levels[String(item.id)] ?? 0 }));
      return { status: 200, body: JSON.stringify(items) };
    }
    if (req.method === 'POST' && /^\/api\/reviews\/\d+$/.test(path)) {
      return {
        status: 201,
        body: JSON.stringify({ review: path.slice('/api/reviews/'.length), text: body }),
      };
    }
    if (path.startsWith('/admin/')) return { status: 200, body: 'done' };
    return { status: 404, body: 'no such catalog resource' };
  });
}

/** The frontend; `outboundPort` is its outbound proxy (for `catalog`). */
export function startFrontend(port: number, outboundPort: number): Promise<SampleService> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  return serve('frontend', port, agent, async (req, body) => {
    const path = req.url ?? '/';
    let upstream: Answer | undefined;
    if (req.method === 'GET' && path === '/shop') {
      upstream = await call(agent, outboundPort, 'catalog', 'GET', '/api/items', req);
      if (upstream.status === 200) {
        const items = JSON.parse(upstream.body) as { name: string; inStock: number }[];
        return { status: 200, body: `shop: ${items.map((i) => `${i.name} (${i.inStock})`).join(', ')}` };
      }
    } else if (req.method === 'POST' && /^\/review\/\d+$/.test(path)) {
      upstream = await call(
        agent,
        outboundPort,
        'catalog',
        'POST',
        `/api/reviews/${path.slice(8)}`,
        req,
        body,
      );
      if (upstream.status === 201) return { status: 201, body: 'review posted' };
    } else if (path.startsWith('/admin/')) {
      upstream = await call(agent, outboundPort, 'catalog', 'GET', path, req);
      if (upstream.status === 200) return { status: 200, body: `catalog says: ${upstream.body}` };
    } else {
      return { status: 404, body: 'no such page' };
    }
    // A refusal further in is passed on as it came, so the caller sees which rule said no.
    return { status: upstream.status, body: upstream.body, headers: upstream.headers };
  });
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

type Handler = (req: http.IncomingMessage, body: string) => Promise<Answer>;

function serve(name: string, port: number, agent: http.Agent, handle: Handler): Promise<SampleService> {
  let served = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      served++;
      handle(req, Buffer.concat(chunks).toString()).then(
        (answer) => {
          res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
          res.end(answer.body);
        },
        (error: Error) => {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`${name}: ${error.message}`);
        },
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        name,
        port: typeof address === 'object' && address !== null ? address.port : port,
        get served() {
          return served;
        },
        close: () =>
          new Promise<void>((done) => {
            agent.destroy();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** One call through an outbound proxy, as `http://{host}{path}`, passing on who asks. */
function call(
  agent: http.Agent,
  proxyPort: number,
  host: string,
  method: string,
  path: string,
  from: http.IncomingMessage,
  body?: string,
): Promise<Answer> {
  const headers: Record<string, string> = { host };
  for (const name of ['x-user', 'x-group', 'x-request-id', 'traceparent']) {
    const value = from.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 502,
          body: Buffer.concat(chunks).toString(),
          ...(typeof retryAfter === 'string' ? { headers: { 'retry-after': retryAfter } } : {}),
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
