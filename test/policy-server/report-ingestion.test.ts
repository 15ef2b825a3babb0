/**
 * Report ingestion end to end, over gRPC: configuration decides what a Report costs. With
 * no report rule the records are only checked (a malformed Report is still refused, with
 * the decoder's own message); with one, every record reaches its handler with its own
 * attributes, delta sets applied, and a malformed Report reaches no handler at all.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Client } from '@grpc/grpc-js';
import { AttributeBag, ReportRequestEncoder, Timestamp, encodeReportRequest } from '../../attributes';
import { createBuiltinRegistry, defineAdapter, s } from '../../adapters';
import { createPolicyServer, type PolicyServer } from '../../policy-server';
import { mixer } from '../../proto';
import { callUnary, createRawClient } from '../support/raw-grpc-client';

const REPORT = '/istio.mixer.v1.Mixer/Report';
const decodeReportResponse = (bytes: Uint8Array): mixer.ReportResponse => mixer.ReportResponse.decode(bytes);

/** A Check rule only, as bench:mesh runs: no record of a Report goes anywhere. */
const CHECK_RULES = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: refuse, namespace: istio-system }
spec: { compiledAdapter: denier }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: nothing, namespace: istio-system }
spec: { compiledTemplate: checknothing }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: admin, namespace: istio-system }
spec:
  match: request.path.startsWith("/admin")
  actions: [{ handler: refuse, instances: [nothing] }]
`;

/** An access log of every record whose path is not /skip, in `namespace`, to the recorder. */
function reportRule(namespace: string): string {
  return `
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: audit, namespace: ${namespace} }
spec: { compiledAdapter: recorder, params: {} }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: access, namespace: ${namespace} }
spec:
  compiledTemplate: logentry
  params:
    severity: '"info"'
    timestamp: request.time
    variables:
      path: request.path
      code: response.code | 0
      user: request.headers["x-user"] | "nobody"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: log, namespace: ${namespace} }
spec:
  match: request.path != "/skip"
  actions: [{ handler: audit, instances: [access] }]
`;
}

/** What the recorder saw of one instance. */
interface Seen {
  readonly path: unknown;
  readonly code: unknown;
  readonly user: unknown;
  readonly seconds: number | undefined;
}

/** A record as a proxy reports it: n-th request, its path, code and user. */
function record(n: number, requestPath: string, code: bigint, user: string): AttributeBag {
  return new AttributeBag([
    ['request.path', requestPath],
    ['response.code', code],
    ['request.time', new Timestamp(1_764_201_600 + n, 0)],
    ['request.headers', new Map([['x-user', user]])],
    ['context.reporter.kind', 'inbound'],
    ['destination.namespace', 'shop'],
  ]);
}

describe('policy-server: Report ingestion', () => {
  let dir: string;
  let server: PolicyServer | undefined;
  let client: Client | undefined;
  let seen: Seen[];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-report-ingestion-'));
    seen = [];
  });
  afterEach(async () => {
    client?.close();
    await server?.close();
    client = undefined;
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(rules: string): Promise<Client> {
    writeFileSync(path.join(dir, 'rules.yaml'), rules);
    const registry = createBuiltinRegistry().register(
      defineAdapter({
        name: 'recorder',
        description: 'records the log entries it is given',
        templates: ['logentry'],
        config: s.object({}),
        build: () => ({
          handleLogEntry: (
            instances: readonly { variables: ReadonlyMap<string, unknown>; timestamp?: Timestamp }[],
          ) => {
            for (const i of instances) {
              seen.push({
                path: i.variables.get('path'),
                code: i.variables.get('code'),
                user: i.variables.get('user'),
                seconds: i.timestamp?.seconds,
              });
            }
          },
          close: async () => undefined,
        }),
      }),
    );
    server = createPolicyServer({ address: '127.0.0.1:0', configDir: dir, watch: false, registry });
    const { address } = await server.start();
    client = createRawClient(address);
    return client;
  }

  /** A Report whose second set names message word -9 of a request that has 2 default words. */
  const malformed = mixer.ReportRequest.encode({
    attributes: [attributesPb({ strings: { 17: -1 } }), attributesPb({ strings: { 17: -9 } })],
    defaultWords: ['/a', '/b'],
    globalWordCount: 0,
    repeatedAttributesSemantics: mixer.ReportRequest_RepeatedAttributesSemantics.DELTA_ENCODING,
  }).finish();
  const malformedMessage =
    'Request could not be processed due to invalid attributes: attribute set 1: value index -9 of attribute request.path is out of range: the request has 2 default words';

  describe('with no report rule', () => {
    it('answers OK to a well-formed Report', async () => {
      const c = await start(CHECK_RULES);
      const bytes = encodeReportRequest([record(0, '/a', 200n, 'ann'), record(1, '/b', 503n, 'bob')]);
      const result = await callUnary(c, REPORT, bytes, decodeReportResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(result.response, {});
    });

    it('still refuses a malformed Report with INVALID_ARGUMENT and the decoder’s message', async () => {
      const c = await start(CHECK_RULES);
      const result = await callUnary(c, REPORT, malformed, decodeReportResponse);
      assert.ok(!result.ok, 'the Report should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
      assert.equal(result.error.details, malformedMessage);
    });

    it('refuses a Report whose set gives an attribute twice, as the decoder does', async () => {
      const c = await start(CHECK_RULES);
      const bytes = mixer.ReportRequest.encode({
        attributes: [
          attributesPb({ words: ['x.custom', '/a'], strings: { [-1]: -2 }, int64s: { [-1]: 5n } }),
        ],
        defaultWords: [],
        globalWordCount: 0,
        repeatedAttributesSemantics: mixer.ReportRequest_RepeatedAttributesSemantics.DELTA_ENCODING,
      }).finish();
      const result = await callUnary(c, REPORT, bytes, decodeReportResponse);
      assert.ok(!result.ok, 'the Report should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
      assert.match(
        result.error.details,
        /attribute set 0: attribute x\.custom is given twice: as strings\[-1\] and as int64s\[-1\]$/,
      );
    });
  });

  describe('with a report rule', () => {
    it('gives every record of a delta-encoded batch to the handler, with its own attributes', async () => {
      const c = await start(CHECK_RULES + reportRule('istio-system'));
      // 250 records in batches as the proxy makes them: most attributes repeat, a few change.
      const expected: Seen[] = [];
      const batches: Uint8Array[] = [];
      let encoder = new ReportRequestEncoder();
      for (let n = 0; n < 250; n++) {
        const requestPath = n % 10 === 3 ? '/skip' : `/items/${n % 4}`;
        const code = n % 7 === 0 ? 503n : 200n;
        const user = n % 5 === 0 ? 'bob' : 'ann';
        const bag = record(n, requestPath, code, user);
        if (n % 50 === 17) bag.delete('request.headers'); // a dropped attribute starts a new batch
        if (encoder.count === 100 || !encoder.add(bag)) {
          batches.push(encoder.finish());
          encoder = new ReportRequestEncoder();
          assert.ok(encoder.add(bag));
        }
        if (requestPath !== '/skip') {
          expected.push({
            path: requestPath,
            code,
            user: bag.has('request.headers') ? user : 'nobody',
            seconds: 1_764_201_600 + n,
          });
        }
      }
      batches.push(encoder.finish());
      assert.ok(batches.length > 3, 'the records span several batches');
      for (const bytes of batches) {
        const result = await callUnary(c, REPORT, bytes, decodeReportResponse);
        assert.ok(result.ok, result.ok ? '' : result.error.message);
      }
      assert.equal(seen.length, expected.length);
      assert.deepEqual(seen, expected);
    });

    it('gives independently encoded records only their own attributes', async () => {
      const c = await start(CHECK_RULES + reportRule('istio-system'));
      const second = record(1, '/b', 404n, 'bob');
      second.delete('request.headers');
      const bytes = encodeReportRequest([record(0, '/a', 200n, 'ann'), second], { independent: true });
      const result = await callUnary(c, REPORT, bytes, decodeReportResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(seen, [
        { path: '/a', code: 200n, user: 'ann', seconds: 1_764_201_600 },
        { path: '/b', code: 404n, user: 'nobody', seconds: 1_764_201_601 },
      ]);
    });

    it('refuses a malformed Report whole: no record of it reaches the handler', async () => {
      const c = await start(CHECK_RULES + reportRule('istio-system'));
      // Two good records, then a third set naming a message word the request does not have.
      const good = encodeReportRequest([record(0, '/a', 200n, 'ann'), record(1, '/b', 200n, 'bob')]);
      // attributes { strings { key: 17 (request.path), value: -99 } }, sint32 keys and values.
      const third = Uint8Array.from([0x0a, 0x07, 0x12, 0x05, 0x08, 0x22, 0x10, 0xc5, 0x01]);
      const bytes = Buffer.concat([good, third]);
      const result = await callUnary(c, REPORT, bytes, decodeReportResponse);
      assert.ok(!result.ok, 'the Report should fail');
      assert.equal(result.error.code, GrpcStatus.INVALID_ARGUMENT);
      assert.match(
        result.error.details,
        /^Request could not be processed due to invalid attributes: attribute set 2: value index -99 of attribute request\.path is out of range: the request has \d+ default words$/,
      );
      assert.deepEqual(seen, [], 'sets 0 and 1 were well formed, but the Report as a whole was refused');
      // The same records without the bad set all arrive.
      assert.ok((await callUnary(c, REPORT, good, decodeReportResponse)).ok);
      assert.equal(seen.length, 2);
    });

    it('counts instances that cannot be built once the Report is taken, and not for a refused one', async () => {
      const c = await start(CHECK_RULES + reportRule('istio-system'));
      // The access log's timestamp reads request.time, with no default: these cannot be built.
      const untimed = [0, 1, 2].map((n) => {
        const bag = record(n, `/u/${n}`, 200n, 'ann');
        bag.delete('request.time');
        return bag;
      });
      const failures = (): number => server!.runtime!.current().dispatcher.stats.instanceBuildFailures;
      // A refused Report: the same records, then a set naming a message word it does not have.
      const third = Uint8Array.from([0x0a, 0x07, 0x12, 0x05, 0x08, 0x22, 0x10, 0xc5, 0x01]);
      const refused = await callUnary(
        c,
        REPORT,
        Buffer.concat([encodeReportRequest(untimed), third]),
        decodeReportResponse,
      );
      assert.ok(!refused.ok && refused.error.code === GrpcStatus.INVALID_ARGUMENT);
      assert.equal(failures(), 0, 'a refused Report counts nothing');
      const taken = await callUnary(c, REPORT, encodeReportRequest(untimed), decodeReportResponse);
      assert.ok(taken.ok, taken.ok ? '' : taken.error.message);
      assert.equal(failures(), 3);
      assert.deepEqual(seen, []);
    });

    it('counts a report rule of another namespace: its traffic reaches it, other traffic does not', async () => {
      const c = await start(CHECK_RULES + reportRule('shop'));
      const other = record(1, '/elsewhere', 200n, 'ann').set('destination.namespace', 'other');
      const bytes = encodeReportRequest([record(0, '/a', 200n, 'ann'), other, record(2, '/b', 404n, 'bob')]);
      const result = await callUnary(c, REPORT, bytes, decodeReportResponse);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(seen, [
        { path: '/a', code: 200n, user: 'ann', seconds: 1_764_201_600 },
        { path: '/b', code: 404n, user: 'bob', seconds: 1_764_201_602 },
      ]);
    });
  });
});

/** A CompressedAttributes message with the given fields, the others empty. */
function attributesPb(
  fields: Partial<Pick<mixer.ReportRequest['attributes'][number], 'words' | 'strings' | 'int64s'>>,
): mixer.ReportRequest['attributes'][number] {
  return {
    words: [],
    strings: {},
    int64s: {},
    doubles: {},
    bools: {},
    timestamps: {},
    durations: {},
    bytes: {},
    stringMaps: {},
    ...fields,
  };
}
