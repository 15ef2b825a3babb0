import { strict as assert } from 'node:assert';
import { isStringMap, valueKey, type AttributeValue } from '../../attributes';
import { buildRequestAttributes } from '../../proxy/attribute-builder';
import { createSeededRandom } from '../../proxy/environment';
import { RequestAttributes } from '../../proxy/request-attributes';
import { randomRequestFacts } from './support/request-facts';

const key = (value: AttributeValue | undefined): string => (value === undefined ? '-' : valueKey(value));

/** Names a request never has, or has only sometimes (on one side, for one role), and header keys no request sends. */
const ABSENT_NAMES = [
  'request.query_params',
  'response.code',
  'check.cache_hit',
  'source.ip',
  'destination.ip',
  'destination.port',
  'request.useragent',
  'request.referer',
  ...['source', 'destination'].flatMap((side) =>
    ['name', 'namespace', 'uid', 'labels'].map((f) => `${side}.${f}`),
  ),
  'context.reporter.uid',
  'nothing.at.all',
  'constructor',
];
const ABSENT_KEYS = ['host', ':scheme', 'x-missing', 'constructor', '__proto__', 'toString', 'X-User'];

describe('proxy: request attributes read from the facts', () => {
  it('answer every name, and every header key, as the whole bag does', () => {
    const random = createSeededRandom(7);
    for (let i = 0; i < 500; i++) {
      const facts = randomRequestFacts(random);
      const whole = buildRequestAttributes(facts);
      // A fresh view per name: each answer comes from the facts, not from a bag made for another.
      for (const name of [...whole.names(), ...ABSENT_NAMES]) {
        const lazy = new RequestAttributes(facts).get(name);
        assert.equal(key(lazy), key(whole.get(name)), `request ${i}: ${name}`);
      }
      const headers = new RequestAttributes(facts).get('request.headers');
      const wholeHeaders = whole.get('request.headers');
      assert.ok(isStringMap(headers) && isStringMap(wholeHeaders));
      for (const k of [...wholeHeaders.keys(), ...ABSENT_KEYS]) {
        assert.equal(headers.get(k), wholeHeaders.get(k), `request ${i}: request.headers[${k}]`);
      }
      assert.deepEqual([...headers.entries()], [...wholeHeaders.entries()]);
    }
  });

  it('keeps what a check adds, before and after the whole bag is made', () => {
    const facts = randomRequestFacts(createSeededRandom(3));
    const attributes = new RequestAttributes(facts);
    attributes.set('check.cache_hit', true);
    attributes.set('request.path', '/overridden');
    assert.equal(attributes.get('check.cache_hit'), true);
    assert.equal(attributes.get('request.path'), '/overridden');
    const names = [...attributes.names()];
    assert.ok(names.includes('check.cache_hit') && names.includes('request.headers'));
    attributes.set('check.error_code', 14n);
    assert.equal(attributes.bag().get('check.error_code'), 14n);
    assert.equal(attributes.bag().get('request.path'), '/overridden');
    assert.equal(attributes.get('request.id'), facts.requestId);
  });
});
