/**
 * The sink's TLS and credentials. The Elasticsearch distribution the tests install has no
 * security module (no TLS, no users, no API keys), so the real node sits behind a TLS front
 * on loopback — Node's own TLS server, with a certificate made by openssl for 127.0.0.1 —
 * that checks the Authorization header as a secured node would (401 with Elasticsearch's
 * error body otherwise) and passes accepted requests on to the node. What is tested is the
 * adapter's side: that it verifies the server against the CA file, sends the API key or the
 * user and password on every request, refuses clearly when they are wrong, and loses nothing
 * when it cannot connect.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../../../adapters/logging/audit';
import { ElasticsearchConfigError, ElasticsearchSink } from '../../../../adapters/logging/elasticsearch';
import { ElasticsearchNode, ELASTICSEARCH_START_MS } from '../../../support/elasticsearch-node';
import { count, sinkEnvironment, sinkParams, spooledRecord } from './support';

const API_KEY = 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==';
const USER = { name: 'auditor', password: 'correct horse battery staple' };

/** A TLS front for `target` that accepts the given Authorization values, and what it saw. */
async function startTlsFront(target: string, dir: string, accepted: readonly string[]) {
  if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
    throw new Error('openssl is not installed; run: bash scripts/install-test-tools.sh');
  }
  const caFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', caFile], // prettier-ignore
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
  const seen: (string | undefined)[] = [];
  const upstream = new URL(target);
  const server = https.createServer(
    { key: readFileSync(keyFile), cert: readFileSync(caFile) },
    (request, response) => {
      const authorization = request.headers.authorization;
      seen.push(authorization);
      if (authorization === undefined || !accepted.includes(authorization)) {
        response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'ApiKey, Basic' });
        response.end(
          JSON.stringify({
            error: { type: 'security_exception', reason: 'unable to authenticate request' },
            status: 401,
          }),
        );
        request.resume();
        return;
      }
      const headers = { ...request.headers };
      delete headers.authorization;
      const forwarded = http.request(
        { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      forwarded.on('error', () => response.destroy());
      request.pipe(forwarded);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('elasticsearch: TLS and credentials, through a TLS front to a real node', function () {
  this.timeout(ELASTICSEARCH_START_MS + 60_000);
  let node: ElasticsearchNode;
  let dir: string;
  let front: Awaited<ReturnType<typeof startTlsFront>>;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    node = await ElasticsearchNode.start();
    await node.warmUp();
    dir = mkdtempSync(join(tmpdir(), 'switchboard-es-tls-'));
    const basic = `Basic ${Buffer.from(`${USER.name}:${USER.password}`).toString('base64')}`;
    front = await startTlsFront(node.url, dir, [`ApiKey ${API_KEY}`, basic]);
  });
  after(async () => {
    await front?.close();
    await node?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    front.seen.length = 0;
    await node.call('DELETE', '/secured-*?ignore_unavailable=true');
  });

  function sink(params: Record<string, unknown>) {
    const { env, logger, dispose } = sinkEnvironment();
    const made = new ElasticsearchSink(
      sinkParams({ urls: [front.url], template: { replicas: 0 }, ...params }),
      env,
    );
    cleanups.push(async () => {
      await made.close();
      dispose();
    });
    return { sink: made, logger };
  }

  const records = (from: number, n: number, route: (record: AuditRecord) => readonly string[]) =>
    Array.from({ length: n }, (_, i) => spooledRecord(from + i, route));

  it('verifies the node against caFile and sends the API key on every request', async () => {
    const { sink: s } = sink({
      index: 'secured-a-{yyyy.MM.dd}',
      apiKey: API_KEY,
      tls: { caFile: front.caFile },
    });
    await s.start();
    await s.deliver(records(0, 50, (r) => s.route(undefined, r)));
    assert.equal(await count(node, 'secured-a-*'), 50);
    assert.ok(front.seen.length >= 2, 'the template and the bulk request went through the front');
    for (const header of front.seen) assert.equal(header, `ApiKey ${API_KEY}`);
  });

  it('sends the user and password as basic authentication', async () => {
    const { sink: s } = sink({
      index: 'secured-b-{yyyy.MM.dd}',
      username: USER.name,
      password: USER.password,
      tls: { caFile: front.caFile },
    });
    await s.start();
    await s.deliver(records(100, 20, (r) => s.route(undefined, r)));
    assert.equal(await count(node, 'secured-b-*'), 20);
    const basic = `Basic ${Buffer.from(`${USER.name}:${USER.password}`).toString('base64')}`;
    for (const header of front.seen) assert.equal(header, basic);
  });

  it('refuses to start with a wrong API key, saying what to check', async () => {
    const { sink: s } = sink({
      index: 'secured-c-{yyyy.MM.dd}',
      apiKey: 'd3Jvbmc6a2V5',
      tls: { caFile: front.caFile },
    });
    await assert.rejects(
      s.start(),
      (error: Error) =>
        error instanceof ElasticsearchConfigError &&
        /401 security_exception: unable to authenticate request/.test(error.message) &&
        /check apiKey, or username and password/.test(error.message),
    );
  });

  it('does not trust a certificate it has no CA for: start warns, delivery fails, nothing is indexed', async () => {
    const { sink: s, logger } = sink({ index: 'secured-d-{yyyy.MM.dd}', apiKey: API_KEY });
    await s.start();
    assert.ok(
      logger.lines.some((line) => /cannot be reached .*certificate/i.test(line)),
      `warned about the certificate: ${logger.lines.join(' | ')}`,
    );
    await assert.rejects(s.deliver(records(200, 5, (r) => s.route(undefined, r))), /certificate/i);
    assert.equal(front.seen.length, 0, 'no request crossed an unverified connection');
    assert.equal(await count(node, 'secured-d-*'), 0);
  });

  it('accepts any certificate with insecureSkipVerify, and warns that it does', async () => {
    const { sink: s, logger } = sink({
      index: 'secured-e-{yyyy.MM.dd}',
      apiKey: API_KEY,
      tls: { insecureSkipVerify: true },
    });
    await s.start();
    assert.ok(logger.lines.some((line) => /insecureSkipVerify is on/.test(line)));
    await s.deliver(records(300, 5, (r) => s.route(undefined, r)));
    assert.equal(await count(node, 'secured-e-*'), 5);
  });
});
