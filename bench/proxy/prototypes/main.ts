/**
 * MEASUREMENT AID, NOT THE PRODUCT. Runs one of the reverse-proxy prototypes of
 * bench/proxy/README.md, for `npm run bench:proxy`:
 *
 *   node dist/bench/proxy/prototypes/main.js KIND --port P --upstream HOST:PORT [--workers N] [--plain] [--onread] [--body TEXT]
 *
 * KIND: naive (i), tuned (ii), raw (iii; also serves h2c through node:http2); answer-http and
 * answer-raw are not proxies: they answer --body themselves (answer.ts). --workers N > 1
 * runs N node:cluster workers sharing the port (the primary only forks and waits). --plain:
 * the raw prototype adds no x-forwarded-for, x-forwarded-proto or x-request-id. --onread: the
 * raw prototype reads upstream sockets with `onread` into reused buffers. Prints
 * `listening on 127.0.0.1:P (N workers)` once every worker listens. Listens on 127.0.0.1 only.
 */
import cluster from 'node:cluster';
import type * as net from 'node:net';
import { parseArgs } from 'node:util';
import { createHttpAnswer, createRawAnswer } from './answer';
import { createH2cBridge } from './h2c-bridge';
import { createNaiveProxy } from './naive-http';
import { createRawProxy } from './raw-net';
import { createTunedProxy } from './tuned-http';
import { parseUpstream, type Upstream } from './upstream';

const KINDS = ['naive', 'tuned', 'raw', 'answer-http', 'answer-raw'] as const;
type Kind = (typeof KINDS)[number];

function createProxy(
  kind: Kind,
  upstream: Upstream,
  plain: boolean,
  onread: boolean,
  body: string,
): net.Server {
  switch (kind) {
    case 'answer-http':
      return createHttpAnswer(body);
    case 'answer-raw':
      return createRawAnswer(body);
    case 'naive':
      return createNaiveProxy(upstream);
    case 'tuned':
      return createTunedProxy(upstream);
    case 'raw':
      return createRawProxy(upstream, {
        addHeaders: !plain,
        h2c: createH2cBridge(upstream),
        upstreamOnread: onread,
      });
  }
}

function run(): void {
  const { values, positionals } = parseArgs({
    options: {
      port: { type: 'string' },
      upstream: { type: 'string' },
      workers: { type: 'string', default: '1' },
      plain: { type: 'boolean', default: false },
      onread: { type: 'boolean', default: false },
      body: { type: 'string', default: 'ok' },
    },
    allowPositionals: true,
  });
  const kind = positionals[0] as Kind;
  if (!KINDS.includes(kind))
    throw new Error(`KIND must be one of ${KINDS.join(', ')}, got '${positionals[0]}'`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be a port, got ${values.port}`);
  const upstream = parseUpstream(values.upstream ?? '');
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`--workers must be >= 1, got ${values.workers}`);

  if (workers > 1 && cluster.isPrimary) {
    let listening = 0;
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on('listening', () => {
      if (++listening === workers)
        process.stdout.write(`listening on 127.0.0.1:${port} (${workers} workers)\n`);
    });
    cluster.on('exit', (worker, code, signal) => {
      process.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code}); stopping\n`);
      process.exit(1);
    });
    return;
  }
  const server = createProxy(kind, upstream, values.plain === true, values.onread === true, values.body!);
  server.listen(port, '127.0.0.1', () => {
    if (workers === 1) process.stdout.write(`listening on 127.0.0.1:${port} (1 worker)\n`);
  });
}

run();
