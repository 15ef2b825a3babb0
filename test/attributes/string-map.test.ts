import { strict as assert } from 'node:assert';
import { FlatStringMap, isStringMap, stringMapsEqual } from '../../attributes';

describe('attributes: FlatStringMap', () => {
  it('compares maps, not pair lists: same pairs in another order equal, a repeated key counts once', () => {
    const headers = (): FlatStringMap => new FlatStringMap(['host', 'a', 'x-user', 'alice']);
    assert.equal(stringMapsEqual(headers(), headers()), true);
    assert.equal(stringMapsEqual(headers(), new FlatStringMap(['x-user', 'alice', 'host', 'a'])), true);
    assert.equal(stringMapsEqual(headers(), new FlatStringMap(['host', 'a', 'x-user', 'bob'])), false);
    assert.equal(
      stringMapsEqual(headers(), new FlatStringMap(['host', 'b', 'x-user', 'alice', 'host', 'a'])),
      true,
    );
    assert.equal(
      stringMapsEqual(headers(), new FlatStringMap(['host', 'a', 'x-user', 'alice', 'host', 'b'])),
      false,
    );
    assert.deepEqual(headers().distinctPairs(), ['host', 'a', 'x-user', 'alice']);
    assert.equal(new FlatStringMap(['a', '1', 'a', '2']).distinctPairs(), undefined);
  });

  it('looks keys up, the last of a repeated key winning, as a protobuf map', () => {
    const m = new FlatStringMap(['a', '1', 'b', '2', 'a', '3']);
    assert.equal(m.get('a'), '3');
    assert.equal(m.get('b'), '2');
    assert.equal(m.get('c'), undefined);
    assert.equal(m.has('b'), true);
    assert.equal(m.size, 2);
    assert.deepEqual(
      [...m],
      [
        ['a', '3'],
        ['b', '2'],
      ],
    );
    assert.deepEqual([...m.keys()], ['a', 'b']);
    assert.deepEqual([...m.values()], ['3', '2']);
    const seen: string[] = [];
    m.forEach((v, k, map) => {
      seen.push(`${k}=${v}`);
      assert.equal(map, m);
    });
    assert.deepEqual(seen, ['a=3', 'b=2']);
  });

  it('answers the same beyond the scanned size', () => {
    const pairs: string[] = [];
    for (let i = 0; i < 100; i++) pairs.push(`k${i}`, `v${i}`);
    pairs.push('k7', 'again');
    const m = new FlatStringMap(pairs);
    assert.equal(m.get('k99'), 'v99');
    assert.equal(m.get('k7'), 'again');
    assert.equal(m.size, 100);
  });

  it('is a string map, equal to a Map with the same entries', () => {
    const m = new FlatStringMap(['x', 'y']);
    assert.ok(isStringMap(m));
    assert.ok(stringMapsEqual(m, new Map([['x', 'y']])));
    assert.ok(!stringMapsEqual(m, new Map([['x', 'z']])));
    assert.ok(!isStringMap('x') && !isStringMap(new Uint8Array(2)) && !isStringMap(null));
  });
});

describe('attributes: AttributeBag', () => {
  it('keeps global-word and other names apart, with one count', async () => {
    const { AttributeBag, GLOBAL_DICTIONARY } = await import('../../attributes');
    assert.equal(
      new Set(GLOBAL_DICTIONARY).size,
      GLOBAL_DICTIONARY.length,
      'the bag needs distinct global words',
    );
    const bag = new AttributeBag([
      ['request.path', '/a'],
      ['custom.thing', 'x'],
    ]);
    assert.equal(bag.size, 2);
    assert.equal(bag.get('request.path'), '/a');
    assert.equal(bag.get('custom.thing'), 'x');
    assert.equal(bag.setGlobalWord(GLOBAL_DICTIONARY.indexOf('request.path'), '/b'), false);
    assert.equal(bag.get('request.path'), '/b');
    bag.set('custom.thing', 'y').set('request.method', 'GET');
    assert.equal(bag.size, 3);
    assert.deepEqual([...bag.names()].sort(), ['custom.thing', 'request.method', 'request.path']);
    const copy = bag.clone();
    assert.ok(bag.delete('custom.thing') && bag.delete('request.path'));
    assert.ok(!bag.delete('request.path') && !bag.delete('custom.other'));
    assert.equal(bag.size, 1);
    assert.equal(copy.size, 3);
    assert.deepEqual(bag, new AttributeBag([['request.method', 'GET']]));
  });
});
