/**
 * MEASUREMENT AID, NOT THE PRODUCT. Prototype (i) of bench/proxy/README.md: the reverse proxy
 * most Node code would write first — `http.createServer` and `http.request` through a
 * keep-alive `http.Agent`, bodies piped both ways. It exists to be measured by
 * `npm run bench:proxy` (BENCH_PROTOTYPES=naive), as the floor the real proxy must beat.
 */
import * as http from 'node:http';
import type { Upstream } from './upstream';

export function createNaiveProxy(upstream: Upstream): http.Server {
  const agent = new http.Agent({ keepAlive: true });
  return http.createServer((req, res) => {
    const forward = http.request(
      {
        host: upstream.host,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
}
