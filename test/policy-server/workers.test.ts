import { strict as assert } from 'node:assert';
import { availableParallelism } from 'node:os';
import { createWorkerSupervisor, parseWorkerCount, supervisedWorkerSlot } from '../../policy-server';

describe('policy-server: workers', () => {
  it('reads a worker count: a whole number, or 0 and auto for one per CPU', () => {
    assert.equal(parseWorkerCount('1'), 1);
    assert.equal(parseWorkerCount('16'), 16);
    assert.equal(parseWorkerCount('auto'), availableParallelism());
    assert.equal(parseWorkerCount('0'), availableParallelism());
    for (const bad of ['', '-1', '1.5', '01', 'two', '10000', ' 2']) {
      assert.equal(parseWorkerCount(bad), undefined, bad);
    }
  });

  it('is not a supervised worker in a process the supervisor did not fork', () => {
    assert.equal(supervisedWorkerSlot(), undefined);
  });

  it('refuses a worker count below 1', () => {
    assert.throws(
      () =>
        createWorkerSupervisor({
          workers: 0,
          exec: 'x.js',
          args: [],
          address: '127.0.0.1:0',
          log: () => undefined,
        }),
      { name: 'TypeError', message: 'workers must be a whole number ≥ 1, got 0' },
    );
  });
});
