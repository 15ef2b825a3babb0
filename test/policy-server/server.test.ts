import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Client } from '@grpc/grpc-js';
import {
  AttributeBag,
  AttributeDecodeError,
  decodeCheckRequest,
  encodeCheckRequest,
  encodeReportRequest,
  STANDARD_MANIFEST,
} from '../../attributes';
import {
  ConfigLoadError,
  createPolicyServer,
  DEFAULT_VALID_DURATION_MS,
  DEFAULT_VALID_USE_COUNT,
  GENERATION_HEADER,
  REPORT_ID_HEADER,
} from '../../policy-server';
import { createBuiltinRegistry, defineAdapter, s } from '../../adapters';
import { writeFileSync } from 'node:fs';
import type { PolicyServer, PolicyServerOptions } from '../../policy-server';
import { attributesPb, health, mixer } from '../../proto';
import { callUnary, checkHealth, createRawClient } from '../support/raw-grpc-client';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'config');
const CHECK = '/istio.mixer.v1.Mixer/Check';
const REPORT = '/istio.mixer.v1.Mixer/Report';
const SERVING = health.HealthCheckResponse_ServingStatus.SERVING;
const NOT_SERVING = health.HealthCheckResponse_ServingStatus.NOT_SERVING;

/** A Check as a proxy sends it: attribute names and values as message words. */
function checkRequestBytes(quotas: mixer.CheckRequest['quotas'] = {}): Uint8Array {
  return mixer.CheckRequest.encode({
    attributes: {
      words: ['destination.service.host', 'ratings.default.svc.cluster.local', 'request.size'],
      strings: { [-1]: -2 },
      int64s: { [-3]: 512n },
      doubles: {},
      bools: {},
      timestamps: {},
      durations: {},
      bytes: {},
      stringMaps: {},
    },
    globalWordCount: 0,
    deduplicationId: 'dedup-1',
    quotas,
  }).finish();
}

function compressed(words: string[], strings: { [key: number]: number }): attributesPb.CompressedAttributes {
  return attributesPb.CompressedAttributes.fromPartial({ words, strings });
}

const decodeCheckResponse = (bytes: Uint8Array): mixer.CheckResponse => mixer.CheckResponse.decode(bytes);
const decodeReportResponse = (bytes: Uint8Array): mixer.ReportResponse => mixer.ReportResponse.decode(bytes);

describe('policy server', () => {
  const servers: PolicyServer[] = [];
  const clients: Client[] = [];

  /** Starts a server on an ephemeral loopback port and a client for it; both closed after each test. */
  async function startServer(
    options: PolicyServerOptions = {},
  ): Promise<{ server: PolicyServer; client: Client }> {
    const server = createPolicyServer({ address: '127.0.0.1:0', ...options });
    servers.push(server);
    const { address } = await server.start();
    const client = createRawClient(address);
    clients.push(client);
    return { server, client };
  }

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  describe('start', () => {
    it('listens on an ephemeral loopback port and serves the configuration it loaded', async () => {
      const server = createPolicyServer({ address: '127.0.0.1:0', configDir: path.join(FIXTURES, 'good') });
      servers.push(server);
      assert.equal(server.generation, 0);
      const listening = await server.start();
      assert.ok(listening.port > 0);
      assert.equal(listening.address, `127.0.0.1:${listening.port}`);
      assert.equal(server.generation, 1);
      assert.equal(server.snapshot?.resources.length, 5);
      assert.equal(server.start(), server.start(), 'start() again returns the same promise');
    });

    it('serves on node:http2 when SWITCHBOARD_HTTP2_SERVER=node, and refuses another value', async () => {
      const before = process.env['SWITCHBOARD_HTTP2_SERVER'];
      try {
        // node:http2 adds a `date` field to every response; our own server sends none.
        const dateOf = async (server: PolicyServer): Promise<unknown> => {
          const session = http2.connect(`http://${(await server.start()).address}`);
          try {
            const stream = session.request({
              ':method': 'POST',
              ':path': '/grpc.health.v1.Health/Check',
              'content-type': 'application/grpc',
            });
            stream.end(Buffer.alloc(5));
            const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
            stream.resume();
            return headers['date'];
          } finally {
            session.close();
          }
        };
        process.env['SWITCHBOARD_HTTP2_SERVER'] = 'node';
        const { server: onNode, client } = await startServer();
        const health = await checkHealth(client, '');
        assert.ok(health.ok, health.ok ? '' : health.error.message);
        assert.equal(health.response.status, SERVING);
        assert.equal(typeof (await dateOf(onNode)), 'string', 'served by node:http2');
        delete process.env['SWITCHBOARD_HTTP2_SERVER'];
        const { server: onOwn } = await startServer();
        assert.equal(await dateOf(onOwn), undefined, 'served by our own HTTP/2 server');
        process.env['SWITCHBOARD_HTTP2_SERVER'] = 'nghttp2';
        const refused = createPolicyServer({ address: '127.0.0.1:0' });
        servers.push(refused);
        await assert.rejects(refused.start(), /SWITCHBOARD_HTTP2_SERVER must be own or node, got "nghttp2"/);
      } finally {
        if (before === undefined) delete process.env['SWITCHBOARD_HTTP2_SERVER'];
        else process.env['SWITCHBOARD_HTTP2_SERVER'] = before;
      }
    });

    it('runs with an empty configuration when given no directory', async () => {
      const { server } = await startServer();
      assert.equal(server.generation, 1);
      assert.deepEqual(server.snapshot?.resources, []);
    });

    it('fails with every configuration error and binds nothing when the configuration does not load', async () => {
      const server = createPolicyServer({
        address: '127.0.0.1:0',
        configDir: path.join(FIXTURES, 'errors-in-several-files'),
      });
      servers.push(server);
      const error = await server.start().catch((e: unknown) => e);
      assert.ok(error instanceof ConfigLoadError);
      assert.equal(error.errors.length, 5);
      assert.equal(server.generation, 0);
    });

    it('refuses malformed options when created', () => {
      assert.throws(() => createPolicyServer({ address: 'localhost' }), {
        name: 'TypeError',
        message:
          'address must be HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9091, got "localhost"',
      });
      assert.throws(
        () => createPolicyServer({ validDurationMs: 0 }),
        /validDurationMs must be a whole number/,
      );
      assert.throws(
        () => createPolicyServer({ validUseCount: 2 ** 31 }),
        /validUseCount must be a whole number/,
      );
    });
  });

  describe('Check', () => {
    it('passes every precondition, with the default validity, and grants every quota as requested', async () => {
      const { client } = await startServer();
      const result = await callUnary(
        client,
        CHECK,
        checkRequestBytes({
          requestcount: { amount: 5n, bestEffort: false },
          bytes: { amount: 4096n, bestEffort: true },
        }),
        decodeCheckResponse,
      );
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      const validDuration = { seconds: 60n, nanos: 0 };
      assert.equal(DEFAULT_VALID_DURATION_MS, 60_000);
      assert.equal(DEFAULT_VALID_USE_COUNT, 10_000);
      assert.deepEqual(result.response, {
        precondition: {
          status: { code: 0, message: '', details: [] },
          validDuration,
          validUseCount: 10_000,
          referencedAttributes: { words: [], attributeMatches: [] },
          routeDirective: undefined,
        },
        quotas: {
          requestcount: {
            validDuration,
            grantedAmount: 5n,
            status: { code: 0, message: '', details: [] },
            referencedAttributes: { words: [], attributeMatches: [] },
          },
          bytes: {
            validDuration,
            grantedAmount: 4096n,
            status: { code: 0, message: '', details: [] },
            referencedAttributes: { words: [], attributeMatches: [] },
          },
        },
      });
    });

    it('names the configuration generation that decided in a response header, the next one after a reload', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-generation-'));
      cpSync(path.join(FIXTURES, 'good'), dir, { recursive: true });
      try {
        const { server } = await startServer({ configDir: dir, watch: false });
        const address = `http://127.0.0.1:${(await server.start()).port}`;
        const session = http2.connect(address);
        const generationOf = (): Promise<string | undefined> =>
          new Promise((resolve, reject) => {
            const stream = session.request({
              ':method': 'POST',
              ':path': CHECK,
              'content-type': 'application/grpc',
            });
            const body = Buffer.from(checkRequestBytes());
            const prefix = Buffer.alloc(5);
            prefix.writeUInt32BE(body.length, 1);
            stream.on('response', (headers) => resolve(headers[GENERATION_HEADER] as string | undefined));
            stream.on('error', reject);
            stream.resume();
            stream.end(Buffer.concat([prefix, body]));
          });
        try {
          assert.equal(await generationOf(), '1');
          await server.runtime?.reload();
          assert.equal(await generationOf(), '2');
        } finally {
          session.destroy();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('answers a Check encoded as a proxy encodes it, with the global dictionary', async () => {
      const { client } = await startServer();
      const bytes = encodeCheckRequest({
        attributes: new AttributeBag([
          ['destination.service.host', 'ratings.default.svc.cluster.local'],
          ['request.path', '/ratings/0'],
          ['request.size', 128n],
        ]),
        deduplicationId: 'proxy-1',
        quotas: new Map([['requestcount', { amount: 1n, bestEffort: false }]]),
      });
      const result = await callUnary(client, CHECK, bytes, decodeCheckResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.equal(result.response.precondition?.status?.code, 0);
      assert.equal(result.response.quotas['requestcount']?.grantedAmount, 1n);
    });

    it('answers without quota results when none are requested, with the configured validity', async () => {
      const { client } = await startServer({ validDurationMs: 1_500, validUseCount: 7 });
      const result = await callUnary(client, CHECK, checkRequestBytes(), decodeCheckResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(result.response.quotas, {});
      assert.deepEqual(result.response.precondition?.validDuration, { seconds: 1n, nanos: 500_000_000 });
      assert.equal(result.response.precondition?.validUseCount, 7);
    });

    it('answers INVALID_ARGUMENT with the decoder message for a word index out of range', async () => {
      const { client } = await startServer();
      // Index -3 names words[2] of the message, which has only two words.
      const bytes = mixer.CheckRequest.encode({
        attributes: compressed(['source.uid', 'kubernetes://ratings-v1'], { [-1]: -3 }),
        globalWordCount: 0,
        deduplicationId: '',
        quotas: {},
      }).finish();
      const decodeError = captureDecodeError(() => decodeCheckRequest(bytes, STANDARD_MANIFEST));
      assert.equal(decodeError.code, 'WORD_INDEX_OUT_OF_RANGE');

      const result = await callUnary(client, CHECK, bytes, decodeCheckResponse);
      assert.ok(!result.ok, 'the Check should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
      // The prefix tells an Istio proxy to retry with the first 111 words of its dictionary.
      assert.equal(
        result.error.details,
        'Request could not be processed due to invalid attributes: ' + decodeError.message,
      );
    });

    it('answers INVALID_ARGUMENT with the dictionary prefix for a global_word_count beyond the dictionary', async () => {
      const { client } = await startServer();
      const bytes = mixer.CheckRequest.encode({
        attributes: compressed([], {}),
        globalWordCount: 223,
        deduplicationId: '',
        quotas: {},
      }).finish();
      const result = await callUnary(client, CHECK, bytes, decodeCheckResponse);
      assert.ok(!result.ok, 'the Check should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
      assert.equal(
        result.error.details,
        'Request could not be processed due to invalid attributes: global_word_count 223 is larger than the global dictionary, which has 222 words',
      );
    });

    it('answers INVALID_ARGUMENT for truncated bytes', async () => {
      const { client } = await startServer();
      const bytes = checkRequestBytes().subarray(0, 9);
      const decodeError = captureDecodeError(() => decodeCheckRequest(bytes, STANDARD_MANIFEST));

      const result = await callUnary(client, CHECK, bytes, decodeCheckResponse);
      assert.ok(!result.ok, 'the Check should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
      assert.equal(result.error.details, decodeError.message);
    });

    it('answers INTERNAL for an unexpected exception, and logs it once with its stack', async () => {
      const logged: string[] = [];
      const { server, client } = await startServer({ logger: { error: (message) => logged.push(message) } });
      // A fault of our own (not an adapter's, which the failure policy answers).
      server.runtime!.current().dispatcher.check = () => Promise.reject(new Error('dispatcher exploded'));
      const result = await callUnary(client, CHECK, checkRequestBytes(), decodeCheckResponse);
      assert.ok(!result.ok, 'the Check should fail');
      assert.equal(result.error.code, GrpcStatus.INTERNAL);
      assert.equal(result.error.details, 'internal error in Check: dispatcher exploded');
      assert.equal(logged.length, 1);
      assert.match(
        logged[0] ?? '',
        /^switchboard: Check failed with an unexpected error: Error: dispatcher exploded\n\s+at /,
      );
    });
  });

  describe('Report', () => {
    it('accepts a batch of attribute sets with an empty response', async () => {
      const { client } = await startServer();
      const bytes = mixer.ReportRequest.encode({
        attributes: [
          compressed(['request.path', '/ratings/1'], { [-1]: -2 }),
          compressed(['request.path', '/ratings/2'], { [-1]: -2 }),
        ],
        repeatedAttributesSemantics: mixer.ReportRequest_RepeatedAttributesSemantics.DELTA_ENCODING,
        defaultWords: [],
        globalWordCount: 0,
      }).finish();
      const result = await callUnary(client, REPORT, bytes, decodeReportResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(result.response, {});
    });

    it('accepts reports encoded as a proxy encodes them, delta-encoded', async () => {
      const { client } = await startServer();
      const bytes = encodeReportRequest([
        new AttributeBag([
          ['request.path', '/ratings/1'],
          ['response.code', 200n],
        ]),
        new AttributeBag([
          ['request.path', '/ratings/2'],
          ['response.code', 503n],
        ]),
      ]);
      const result = await callUnary(client, REPORT, bytes, decodeReportResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(result.response, {});
    });

    it("gives report handlers the client's report id, joined with handler and template, the same on a resend", async () => {
      const seen: (string | undefined)[] = [];
      const registry = createBuiltinRegistry().register(
        defineAdapter({
          name: 'recorder',
          description: 'records the report ids it is given',
          templates: ['logentry'],
          config: s.object({}),
          build: () => ({
            handleLogEntry: (_instances: unknown[], context: { deduplicationId?: string }) => {
              seen.push(context.deduplicationId);
            },
            close: async () => undefined,
          }),
        }),
      );
      const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-report-id-'));
      try {
        writeFileSync(
          path.join(dir, 'audit.yaml'),
          [
            'apiVersion: config.istio.io/v1alpha2',
            'kind: handler',
            'metadata: { name: audit, namespace: istio-system }',
            'spec: { compiledAdapter: recorder, params: {} }',
            '---',
            'apiVersion: config.istio.io/v1alpha2',
            'kind: instance',
            'metadata: { name: access, namespace: istio-system }',
            'spec: { compiledTemplate: logentry, params: { severity: \'"info"\', variables: { path: request.path | "" } } }',
            '---',
            'apiVersion: config.istio.io/v1alpha2',
            'kind: rule',
            'metadata: { name: all, namespace: istio-system }',
            'spec: { actions: [{ handler: audit, instances: [access] }] }',
            '',
          ].join('\n'),
        );
        const { client } = await startServer({ configDir: dir, registry });
        const bytes = encodeReportRequest([new AttributeBag([['request.path', '/r']])]);
        for (const id of ['batch-7', 'batch-7', '']) {
          const result = await callUnary(
            client,
            REPORT,
            bytes,
            decodeReportResponse,
            5_000,
            id === '' ? {} : { [REPORT_ID_HEADER]: id },
          );
          assert.ok(result.ok, result.ok ? '' : result.error.message);
        }
        assert.deepEqual(seen, [
          'batch-7/audit.handler.istio-system/logentry',
          'batch-7/audit.handler.istio-system/logentry',
          undefined,
        ]);
        const bad = await callUnary(client, REPORT, bytes, decodeReportResponse, 5_000, {
          [REPORT_ID_HEADER]: 'no spaces',
        });
        assert.ok(!bad.ok);
        assert.equal(bad.error.code, GrpcStatus.INVALID_ARGUMENT);
        assert.match(bad.error.details, /x-switchboard-report-id must be 1 to 128 letters/);
        assert.equal(seen.length, 3, 'a refused Report reaches no handler');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('answers INVALID_ARGUMENT when an attribute set is malformed', async () => {
      const { client } = await startServer();
      const bytes = mixer.ReportRequest.encode({
        attributes: [compressed(['request.path', '/ok'], { [-1]: -2 }), compressed([], { [-1]: -9 })],
        repeatedAttributesSemantics: mixer.ReportRequest_RepeatedAttributesSemantics.INDEPENDENT_ENCODING,
        defaultWords: [],
        globalWordCount: 0,
      }).finish();
      const result = await callUnary(client, REPORT, bytes, decodeReportResponse);
      assert.ok(!result.ok, 'the Report should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
    });
  });

  describe('health', () => {
    it('is SERVING for the server and the Mixer service, NOT_FOUND for other services', async () => {
      const { client } = await startServer();
      for (const service of ['', 'istio.mixer.v1.Mixer']) {
        const result = await checkHealth(client, service);
        assert.ok(result.ok, result.ok ? '' : result.error.message);
        assert.equal(result.response.status, SERVING);
      }
      const unknown = await checkHealth(client, 'istio.mixer.v1.Other');
      assert.ok(!unknown.ok);
      assert.equal(unknown.error.code, GrpcStatus.NOT_FOUND);
    });

    it('streams SERVING to a watcher, then NOT_SERVING and the end of the stream on close', async () => {
      const { server, client } = await startServer();
      const stream = client.makeServerStreamRequest(
        '/grpc.health.v1.Health/Watch',
        (request: health.HealthCheckRequest) =>
          Buffer.from(health.HealthCheckRequest.encode(request).finish()),
        (bytes: Buffer) => health.HealthCheckResponse.decode(bytes),
        { service: '' },
      );
      const statuses: health.HealthCheckResponse_ServingStatus[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('data', (response: health.HealthCheckResponse) => {
          statuses.push(response.status);
          if (statuses.length === 1) void server.close();
        });
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      await ended;
      assert.deepEqual(statuses, [SERVING, NOT_SERVING]);
    });
  });

  describe('close', () => {
    it('is idempotent, stops serving, and refuses a later start', async () => {
      const { server, client } = await startServer();
      const first = server.close();
      assert.equal(server.close(), first, 'close() again returns the same promise');
      await first;
      await server.close();
      const result = await callUnary(client, CHECK, checkRequestBytes(), decodeCheckResponse, 1_000);
      assert.ok(!result.ok, 'a closed server answers nothing');
      await assert.rejects(server.start(), /policy server is closed/);
    });

    it('is safe before start', async () => {
      const server = createPolicyServer({ address: '127.0.0.1:0' });
      await server.close();
      await assert.rejects(server.start(), /policy server is closed/);
    });
  });
});

function captureDecodeError(decode: () => unknown): AttributeDecodeError {
  try {
    decode();
  } catch (error) {
    if (error instanceof AttributeDecodeError) return error;
    throw error;
  }
  return assert.fail('decoding should have failed');
}
