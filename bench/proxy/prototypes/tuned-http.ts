/**
 * MEASUREMENT AID, NOT THE PRODUCT. Prototype (ii) of bench/proxy/README.md: node:http on both
 * sides, tuned the ways that are open without leaving node:http:
 *   - the upstream Agent keeps up to 256 idle sockets (LIFO, so warm ones are reused), with
 *     Nagle off (`noDelay`);
 *   - the server keeps idle client connections for 5 minutes (`keepAliveTimeout`), Nagle off;
 *   - headers travel as node's raw `[name, value, …]` arrays (`req.rawHeaders` straight into
 *     `http.request`, `answer.rawHeaders` straight into `writeHead`): node never builds the
 *     lower-cased header objects, and hop-by-hop headers are dropped in one loop;
 *   - no closures per request: the request, its upstream call and the answer point to each
 *     other through symbol-keyed properties, and the listeners are module-level functions;
 *   - a request without a body calls `end()` at once instead of piping an empty stream.
 * Run by `npm run bench:proxy` with BENCH_PROTOTYPES=tuned.
 */
import * as http from 'node:http';
import type { Upstream } from './upstream';

const kResponse = Symbol('downstream response');
const kAnswer = Symbol('upstream answer');

type Forward = http.ClientRequest & { [kResponse]?: http.ServerResponse };
type Answer = http.IncomingMessage & { [kResponse]?: http.ServerResponse };
type Reply = http.ServerResponse & { [kAnswer]?: http.IncomingMessage };

/** Set by {@link withoutHopByHop}: whether the headers announced a request body. */
let sawBody = false;

/**
 * Copies a raw header array without the hop-by-hop headers (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade). Transfer-Encoding and Content-Length stay: node
 * frames the body again from them. Sets {@link sawBody}.
 */
function withoutHopByHop(raw: readonly string[]): string[] {
  const out: string[] = [];
  sawBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 2:
        if (name.toLowerCase() === 'te') continue;
        break;
      case 7:
        {
          const lower = name.toLowerCase();
          if (lower === 'upgrade' || lower === 'trailer') continue;
        }
        break;
      case 10:
        {
          const lower = name.toLowerCase();
          if (lower === 'connection' || lower === 'keep-alive') continue;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') sawBody = raw[i + 1] !== '0';
        break;
      case 16:
        if (name.toLowerCase() === 'proxy-connection') continue;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') sawBody = true;
        break;
    }
    out.push(name, raw[i + 1]!);
  }
  return out;
}

export function createTunedProxy(upstream: Upstream): http.Server {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: 256,
    maxFreeSockets: 256,
    scheduling: 'lifo',
    noDelay: true,
  } as http.AgentOptions);

  function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const headers = withoutHopByHop(req.rawHeaders);
    const hasBody = sawBody;
    const forward: Forward = http.request({
      host: upstream.host,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: headers as unknown as http.OutgoingHttpHeaders, // node accepts a flat raw array
      agent,
    });
    forward[kResponse] = res;
    forward.on('response', onAnswer);
    forward.on('error', onForwardError);
    if (hasBody) req.pipe(forward);
    else forward.end();
  }

  const server = http.createServer({ noDelay: true }, onRequest);
  server.keepAliveTimeout = 300_000;
  server.headersTimeout = 60_000;
  server.requestTimeout = 0;
  return server;
}

function onAnswer(this: Forward, answer: Answer): void {
  const res: Reply = this[kResponse]!;
  res.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.rawHeaders));
  answer[kResponse] = res;
  res[kAnswer] = answer;
  answer.on('data', onAnswerData);
  answer.on('end', onAnswerEnd);
}

function onAnswerData(this: Answer, chunk: Buffer): void {
  const res: Reply = this[kResponse]!;
  if (!res.write(chunk)) {
    this.pause();
    res.once('drain', onReplyDrain);
  }
}

function onReplyDrain(this: Reply): void {
  this[kAnswer]?.resume();
}

function onAnswerEnd(this: Answer): void {
  this[kResponse]!.end();
}

function onForwardError(this: Forward): void {
  const res = this[kResponse]!;
  if (!res.headersSent) {
    res.writeHead(502, ['content-length', '0']);
    res.end();
  } else {
    res.destroy();
  }
}
