/**
 * The Mixer API end to end: a real gRPC client sends Checks and Reports encoded as
 * Istio's proxies encoded them (global dictionary, message words, string maps) to a
 * server running the example configuration, and reads the answers off the wire.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { AttributeBag, GLOBAL_DICTIONARY, encodeCheckRequest, encodeReportRequest } from '../../attributes';
import { createPolicyServer, type PolicyServer } from '../../policy-server';
import { mixer } from '../../proto';
import { callUnary, createRawClient } from '../support/raw-grpc-client';

const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'examples', 'config');
const CHECK = '/istio.mixer.v1.Mixer/Check';
const REPORT = '/istio.mixer.v1.Mixer/Report';

/** Names and map keys of the referenced attributes of a response, from their dictionary indices. */
function referenced(ra: mixer.ReferencedAttributes | undefined): string[] {
  const word = (i: number) => (i < 0 ? ra!.words[-i - 1]! : GLOBAL_DICTIONARY[i]!);
  return (ra?.attributeMatches ?? [])
    .map(
      (m) =>
        `${m.condition === mixer.ReferencedAttributes_Condition.ABSENCE ? '-' : ''}${word(m.name)}${m.mapKey === 0 ? '' : `[${word(m.mapKey)}]`}`,
    )
    .sort();
}

describe('policy-server: the Mixer API with the example configuration', () => {
  let server: PolicyServer;
  let client: Client;

  before(async () => {
    server = createPolicyServer({
      address: '127.0.0.1:0',
      configDir: EXAMPLES,
      watch: false,
      logger: { error: () => undefined },
    });
    const { address } = await server.start();
    client = createRawClient(address);
  });
  after(async () => {
    client.close();
    await server.close();
  });

  const check = async (
    attributes: AttributeBag,
    quotas = new Map<string, { amount: bigint; bestEffort: boolean }>(),
  ) => {
    const result = await callUnary(
      client,
      CHECK,
      encodeCheckRequest({ attributes, quotas, deduplicationId: 'd-1' }),
      (b) => mixer.CheckResponse.decode(b),
    );
    if (!result.ok) assert.fail(result.error.message);
    return result.response;
  };

  it('denies reviews v3 calling ratings, naming both failing handlers, with what the decision read', async () => {
    const response = await check(
      new AttributeBag([
        ['destination.labels', new Map([['app', 'ratings']])],
        [
          'source.labels',
          new Map([
            ['app', 'reviews'],
            ['version', 'v3'],
          ]),
        ],
        ['request.path', '/ratings/1'],
      ]),
    );
    assert.deepEqual(response.precondition?.status, {
      code: 7,
      message:
        'refuse.handler.istio-system:reviews v3 may not call ratings, allowed-versions.handler.istio-system:v3 is not whitelisted',
      details: [],
    });
    assert.deepEqual(response.precondition?.validDuration, { seconds: 5n, nanos: 0 });
    assert.deepEqual(referenced(response.precondition?.referencedAttributes), [
      'destination.labels[app]',
      'source.labels[app]',
      'source.labels[version]',
    ]);
    assert.deepEqual(response.quotas, {});
  });

  it('lets v2 through and charges the quota of its destination', async () => {
    const response = await check(
      new AttributeBag([
        ['destination.labels', new Map([['app', 'ratings']])],
        [
          'source.labels',
          new Map([
            ['app', 'reviews'],
            ['version', 'v2'],
          ]),
        ],
      ]),
      new Map([['requestcount', { amount: 2n, bestEffort: false }]]),
    );
    assert.equal(response.precondition?.status?.code, 0);
    assert.equal(response.quotas.requestcount?.grantedAmount, 2n);
  });

  it('accepts a delta-encoded Report batch', async () => {
    const bags = [
      new AttributeBag([
        ['request.path', '/a'],
        ['response.code', 200n],
      ]),
      new AttributeBag([
        ['request.path', '/b'],
        ['response.code', 503n],
      ]),
    ];
    const result = await callUnary(client, REPORT, encodeReportRequest(bags), (b) =>
      mixer.ReportResponse.decode(b),
    );
    assert.ok(result.ok, result.ok ? '' : result.error.message);
  });
});
