import { strict as assert } from 'node:assert';
import { AttributeBag, IpAddress, Presence, type ReferencedAttribute } from '../../../attributes';
import { DecisionCache } from '../../../proxy/policy/decision-cache';

const EXACT = Presence.EXACT;
const ABSENCE = Presence.ABSENCE;

function bag(entries: Record<string, unknown>): AttributeBag {
  return new AttributeBag(Object.entries(entries) as [string, never][]);
}

const terms = { validDurationMs: 10_000, validUseCount: 100, generation: 1 };

describe('proxy: decision cache', () => {
  let nowMs: number;
  let cache: DecisionCache<string>;
  beforeEach(() => {
    nowMs = 1_000_000;
    cache = new DecisionCache<string>({ now: () => nowMs, maxEntries: 3 });
  });

  it('answers a request that agrees on exactly the referenced attributes, and no other', () => {
    const refs: ReferencedAttribute[] = [
      { name: 'source.name', presence: EXACT },
      { name: 'request.path', presence: EXACT },
    ];
    cache.store(bag({ 'source.name': 'a', 'request.path': '/x', 'request.size': 1n }), refs, 'deny-a', terms);
    // Other attributes do not matter; the referenced ones must be equal.
    assert.equal(
      cache.lookup(bag({ 'source.name': 'a', 'request.path': '/x', 'request.size': 99n })),
      'deny-a',
    );
    assert.equal(cache.lookup(bag({ 'source.name': 'b', 'request.path': '/x' })), undefined);
    assert.equal(cache.lookup(bag({ 'request.path': '/x' })), undefined);
    assert.deepEqual({ hits: cache.stats.hits, misses: cache.stats.misses }, { hits: 1, misses: 2 });
  });

  it('keys absences and string-map keys: a request with a header the decision saw absent misses', () => {
    const refs: ReferencedAttribute[] = [
      { name: 'request.headers', mapKey: 'x-user', presence: EXACT },
      { name: 'request.headers', mapKey: 'x-debug', presence: ABSENCE },
      { name: 'source.ip', presence: ABSENCE },
    ];
    const headers = (h: Record<string, string>): Map<string, string> => new Map(Object.entries(h));
    cache.store(
      bag({ 'request.headers': headers({ 'x-user': 'bob', accept: '*/*' }) }),
      refs,
      'allow-bob',
      terms,
    );
    assert.equal(cache.lookup(bag({ 'request.headers': headers({ 'x-user': 'bob' }) })), 'allow-bob');
    assert.equal(
      cache.lookup(bag({ 'request.headers': headers({ 'x-user': 'bob', 'x-debug': '1' }) })),
      undefined,
    );
    assert.equal(cache.lookup(bag({ 'request.headers': headers({ 'x-user': 'eve' }) })), undefined);
    assert.equal(
      cache.lookup(
        bag({ 'request.headers': headers({ 'x-user': 'bob' }), 'source.ip': IpAddress.parse('10.0.0.1') }),
      ),
      undefined,
    );
  });

  it('tells values of different types apart', () => {
    const refs: ReferencedAttribute[] = [{ name: 'destination.port', presence: EXACT }];
    cache.store(bag({ 'destination.port': 80n }), refs, 'int', terms);
    assert.equal(cache.lookup(bag({ 'destination.port': '80' })), undefined);
    assert.equal(cache.lookup(bag({ 'destination.port': 80n })), 'int');
  });

  it('honours valid duration and valid use count, and does not keep uncacheable answers', () => {
    const refs: ReferencedAttribute[] = [{ name: 'source.name', presence: EXACT }];
    cache.store(bag({ 'source.name': 'a' }), refs, 'twice', { ...terms, validUseCount: 3 });
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), 'twice');
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), 'twice');
    // The store served the first use; two lookups spent the rest.
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), undefined);
    cache.store(bag({ 'source.name': 'b' }), refs, 'brief', { ...terms, validDurationMs: 500 });
    nowMs += 499;
    assert.equal(cache.lookup(bag({ 'source.name': 'b' })), 'brief');
    nowMs += 1;
    assert.equal(cache.lookup(bag({ 'source.name': 'b' })), undefined);
    cache.store(bag({ 'source.name': 'c' }), refs, 'never', { ...terms, validUseCount: 0 });
    cache.store(bag({ 'source.name': 'd' }), refs, 'once', { ...terms, validUseCount: 1 });
    assert.equal(cache.size, 0);
  });

  it('holds at most maxEntries, evicting the least recently used', () => {
    const refs: ReferencedAttribute[] = [{ name: 'source.name', presence: EXACT }];
    for (const name of ['a', 'b', 'c']) cache.store(bag({ 'source.name': name }), refs, name, terms);
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), 'a'); // a is now the most recent
    cache.store(bag({ 'source.name': 'd' }), refs, 'd', terms);
    assert.equal(cache.size, 3);
    assert.equal(cache.lookup(bag({ 'source.name': 'b' })), undefined);
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), 'a');
    assert.equal(cache.stats.evicted, 1);
  });

  it('keeps an answer in use through many stores, and evicts the unused ones first', () => {
    const big = new DecisionCache<string>({ now: () => nowMs, maxEntries: 10 });
    const refs: ReferencedAttribute[] = [{ name: 'source.name', presence: EXACT }];
    big.store(bag({ 'source.name': 'hot' }), refs, 'hot', { ...terms, validUseCount: 1_000 });
    for (let i = 0; i < 100; i++) {
      big.store(bag({ 'source.name': `cold-${i}` }), refs, `cold-${i}`, terms);
      assert.equal(big.lookup(bag({ 'source.name': 'hot' })), 'hot', `after ${i + 1} stores`);
    }
    assert.equal(big.size, 10);
    // The ten most recent: the hot one and the last nine cold ones.
    assert.equal(big.lookup(bag({ 'source.name': 'cold-90' })), undefined);
    assert.equal(big.lookup(bag({ 'source.name': 'cold-91' })), 'cold-91');
  });

  it('drops every answer of an older configuration generation once a newer one is seen', () => {
    const refs: ReferencedAttribute[] = [{ name: 'source.name', presence: EXACT }];
    cache.store(bag({ 'source.name': 'a' }), refs, 'old-a', { ...terms, generation: 4 });
    cache.store(bag({ 'source.name': 'b' }), refs, 'old-b', { ...terms, generation: 4 });
    cache.store(bag({ 'source.name': 'c' }), refs, 'new-c', { ...terms, generation: 5 });
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), undefined);
    assert.equal(cache.lookup(bag({ 'source.name': 'c' })), 'new-c');
    assert.equal(cache.stats.droppedByGeneration, 2);
    // A late answer of the older generation is not kept.
    cache.store(bag({ 'source.name': 'a' }), refs, 'late', { ...terms, generation: 4 });
    assert.equal(cache.lookup(bag({ 'source.name': 'a' })), undefined);
  });

  it('tries every signature seen: answers whose decisions read different attributes coexist', () => {
    cache.store(
      bag({ 'request.path': '/admin', 'source.name': 'x' }),
      [{ name: 'request.path', presence: EXACT }],
      'deny-admin',
      terms,
    );
    cache.store(
      bag({ 'request.path': '/public', 'source.name': 'x' }),
      [
        { name: 'request.path', presence: EXACT },
        { name: 'source.name', presence: EXACT },
      ],
      'allow-x',
      terms,
    );
    assert.equal(cache.lookup(bag({ 'request.path': '/admin', 'source.name': 'y' })), 'deny-admin');
    assert.equal(cache.lookup(bag({ 'request.path': '/public', 'source.name': 'x' })), 'allow-x');
    assert.equal(cache.lookup(bag({ 'request.path': '/public', 'source.name': 'y' })), undefined);
  });
});
