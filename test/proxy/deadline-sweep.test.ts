/**
 * The one-timer deadline list of a listener (proxy/deadline-sweep.ts): deadlines fire once,
 * not before they are due, in any order of watching; moved or dropped ones do not fire early.
 * Real timers, tens of milliseconds; no network.
 */
import { strict as assert } from 'node:assert';
import { DeadlineSweep, type DeadlineHolder } from '../../proxy/deadline-sweep';

class Holder implements DeadlineHolder {
  sweepPrev: DeadlineHolder | undefined = undefined;
  sweepNext: DeadlineHolder | undefined = undefined;
  sweepLinked = false;
  deadlineMs = Number.POSITIVE_INFINITY;
  readonly firedAt: number[] = [];

  constructor(private readonly sweep: DeadlineSweep) {}

  set(inMs: number): void {
    this.deadlineMs = this.sweep.now() + inMs;
    this.sweep.watch(this, this.deadlineMs);
  }

  nextDeadlineMs(): number {
    return this.deadlineMs;
  }

  onDeadline(nowMs: number): void {
    assert.ok(nowMs >= this.deadlineMs, 'fired before its deadline');
    this.deadlineMs = Number.POSITIVE_INFINITY;
    this.firedAt.push(nowMs);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('proxy deadline sweep', () => {
  let sweep: DeadlineSweep;
  beforeEach(() => {
    sweep = new DeadlineSweep();
  });
  afterEach(() => sweep.close());

  it('fires each deadline once, when due, whatever the order they were watched in', async () => {
    const late = new Holder(sweep);
    const early = new Holder(sweep);
    const start = sweep.now();
    late.set(60);
    early.set(20); // earlier than the armed timer: it is armed again
    await sleep(40);
    assert.equal(early.firedAt.length, 1);
    assert.equal(late.firedAt.length, 0);
    await sleep(50);
    assert.equal(late.firedAt.length, 1);
    assert.ok(late.firedAt[0]! - start >= 60);
    await sleep(20);
    assert.equal(early.firedAt.length + late.firedAt.length, 2);
  });

  it('does not fire a deadline moved later before its new time, nor one unwatched', async () => {
    const moved = new Holder(sweep);
    const dropped = new Holder(sweep);
    moved.set(20);
    dropped.set(20);
    sweep.unwatch(dropped);
    await sleep(10);
    moved.deadlineMs = sweep.now() + 40; // refreshed, as traffic refreshes an idle timeout
    await sleep(25);
    assert.deepEqual(moved.firedAt, []);
    await sleep(35);
    assert.equal(moved.firedAt.length, 1);
    assert.deepEqual(dropped.firedAt, []);
  });

  it('fires nothing after close', async () => {
    const holder = new Holder(sweep);
    holder.set(10);
    sweep.close();
    holder.set(5);
    await sleep(30);
    assert.deepEqual(holder.firedAt, []);
  });
});
