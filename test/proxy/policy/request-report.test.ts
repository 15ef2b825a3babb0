import { strict as assert } from 'node:assert';
import {
  AttributeBag,
  decodeReportRequest,
  ReportRequestEncoder,
  valueKey,
  type Bag,
} from '../../../attributes';
import { buildRequestAttributes } from '../../../proxy/attribute-builder';
import {
  bagOf,
  completedRequestAttributes,
  RequestAttributes,
  type CheckAttributes,
} from '../../../proxy/request-attributes';
import { createSeededRandom } from '../../../proxy/environment';
import { RequestReportWriter } from '../../../proxy/policy/request-report';
import type { HttpRequestFacts } from '../../../proxy/traffic-facts';
import { randomRequestFacts, requestFacts } from '../support/request-facts';

/** A request, and the check's attributes as the proxy makes them (when it checked). */
function randomRequest(random: () => number): {
  facts: HttpRequestFacts;
  checked: CheckAttributes | undefined;
} {
  const facts = randomRequestFacts(random);
  let checked: CheckAttributes | undefined;
  if (random() < 0.7) {
    // As the proxy makes it (or as a whole bag): the request's attributes, then what the check adds.
    checked = random() < 0.5 ? new RequestAttributes(facts) : buildRequestAttributes(facts);
    checked.set('check.cache_hit', random() < 0.5);
    if (random() < 0.3) checked.set('quota.cache_hit', random() < 0.5);
    if (random() < 0.2) {
      checked.set('check.error_code', 14n);
      checked.set('check.error_message', 'unavailable');
    }
  }
  return { facts, checked };
}

/** Writes every request through the writer, a new batch whenever one refuses the next. */
function writeBatches(
  requests: readonly { facts: HttpRequestFacts; checked: CheckAttributes | undefined }[],
  batchEntries = 1000,
): Uint8Array[] {
  const writer = new RequestReportWriter();
  const batches: Uint8Array[] = [];
  let encoder = new ReportRequestEncoder();
  for (const { facts, checked } of requests) {
    // As the Report sender does: a refused request starts the next batch, a full batch closes.
    writer.prepare(facts, checked);
    if (!encoder.add(writer)) {
      batches.push(encoder.finish());
      encoder = new ReportRequestEncoder();
      assert.ok(encoder.add(writer), 'a new batch takes any request');
    }
    writer.release();
    if (encoder.count >= batchEntries) {
      batches.push(encoder.finish());
      encoder = new ReportRequestEncoder();
    }
  }
  if (encoder.count > 0) batches.push(encoder.finish());
  return batches;
}

function described(bag: Bag): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...bag.names()].sort()) out[name] = valueKey(bag.get(name)!);
  return out;
}

describe('proxy: Report sets written from the request facts', () => {
  it('decode to exactly the attributes the bag builder makes, over many random sequences', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = createSeededRandom(seed);
      const requests = Array.from({ length: 60 }, () => randomRequest(random));
      const decoded = writeBatches(requests, 1 + Math.floor(random() * 30)).flatMap((batch) =>
        decodeReportRequest(batch),
      );
      assert.equal(decoded.length, requests.length, `seed ${seed}: every request reported once`);
      requests.forEach(({ facts, checked }, i) => {
        const expected = completedRequestAttributes(
          facts,
          checked === undefined ? undefined : bagOf(checked),
        );
        assert.deepEqual(described(decoded[i]!), described(expected), `seed ${seed}, request ${i}`);
      });
    }
  });

  it('writes only what changed since the request before', () => {
    const first = requestFacts({ receivedRequestHead: 'GET / HTTP/1.1\r\nHost: h', requestId: 'a' });
    const second = requestFacts({ receivedRequestHead: 'GET / HTTP/1.1\r\nHost: h', requestId: 'b' });
    const one = writeBatches([{ facts: first, checked: undefined }])[0]!;
    const two = writeBatches([
      { facts: first, checked: undefined },
      { facts: second, checked: undefined },
    ])[0]!;
    // The second set holds request.id alone: a handful of bytes, not another whole set.
    assert.ok(two.length - one.length < 12, `second set took ${two.length - one.length} bytes`);
    assert.deepEqual(
      decodeReportRequest(two).map((bag) => bag.get('request.id')),
      ['a', 'b'],
    );
  });

  it('is refused after a request that had an attribute it lacks, and after another source', () => {
    const writer = new RequestReportWriter();
    const encoder = new ReportRequestEncoder();
    assert.ok(encoder.add(writer.prepare(requestFacts({ url: '/a?q=1' }), undefined)));
    assert.equal(encoder.add(writer.prepare(requestFacts({ url: '/a' }), undefined)), false);
    const other = new ReportRequestEncoder();
    assert.ok(other.add(new AttributeBag([['request.path', '/']])));
    assert.equal(other.add(writer.prepare(requestFacts(), undefined)), false);
    assert.equal(encoder.count, 1);
    assert.equal(other.count, 1);
  });
});
