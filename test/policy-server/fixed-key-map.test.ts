import { strict as assert } from 'node:assert';
import { inspect } from 'node:util';
import { FixedKeyMap, FixedKeys } from '../../policy-server/fixed-key-map';

describe('policy-server: FixedKeyMap', () => {
  const layout = new FixedKeys(['b', 'a', '__proto__', 'constructor']);
  const values = ['2', undefined, 'p', 7n];
  const map = new FixedKeyMap<unknown>(layout, values);
  const reference = new Map<string, unknown>([
    ['b', '2'],
    ['a', undefined],
    ['__proto__', 'p'],
    ['constructor', 7n],
  ]);

  it('reads as the Map of the same keys and values, in the same order', () => {
    assert.equal(map.size, reference.size);
    for (const key of ['b', 'a', '__proto__', 'constructor', 'c', 'toString', '']) {
      assert.equal(map.get(key), reference.get(key), key);
      assert.equal(map.has(key), reference.has(key), key);
    }
    assert.deepEqual([...map.keys()], [...reference.keys()]);
    assert.deepEqual([...map.values()], [...reference.values()]);
    assert.deepEqual([...map.entries()], [...reference.entries()]);
    assert.deepEqual([...map], [...reference]);
    assert.deepEqual(new Map(map), reference);
    assert.deepEqual(Object.fromEntries(map), Object.fromEntries(reference));
    const seen: unknown[] = [];
    const self = {};
    map.forEach(function (this: unknown, value, key, whole) {
      seen.push([value, key, whole === map, this === self]);
    }, self);
    assert.deepEqual(seen, [
      ['2', 'b', true, true],
      [undefined, 'a', true, true],
      ['p', '__proto__', true, true],
      [7n, 'constructor', true, true],
    ]);
  });

  it('shares its keys between maps, each with its own values; empty when configured empty', () => {
    const other = new FixedKeyMap<unknown>(layout, ['x', 'y', 'z', 'w']);
    assert.equal(other.get('b'), 'x');
    assert.equal(map.get('b'), '2');
    const empty = new FixedKeyMap<unknown>(new FixedKeys([]), []);
    assert.equal(empty.size, 0);
    assert.deepEqual([...empty], []);
  });

  it('shows as a Map in logs and assertion messages', () => {
    assert.equal(inspect(map), inspect(reference));
  });

  it('refuses repeated keys', () => {
    assert.throws(() => new FixedKeys(['a', 'a']), /map keys repeat: a, a/);
  });
});
