/**
 * A set of endpoints a balancer picks from (the available ones, or all of them in panic
 * mode), with what weighted picking needs precomputed. Pools are rebuilt only when health or
 * ejection changes, so a pick reads flat arrays and allocates nothing.
 */
import type { EndpointState } from './endpoint-state';

export class EndpointPool {
  readonly members: readonly EndpointState[];
  readonly size: number;
  readonly totalWeight: number;
  /** All members weigh the same: balancers may use plain indices. */
  readonly equalWeights: boolean;
  /** Round robin's next position, when weights are equal. */
  cursor: number;
  /** Smooth weighted round robin's running weight of each member, by position. */
  readonly currentWeights: Float64Array;
  /** cumulative[i] is the sum of the weights of members 0..i. */
  private readonly cumulative: Float64Array;
  /** Position in `members` of each endpoint of the cluster (by its index); -1 when not a member. */
  private readonly positions: Int32Array;

  /**
   * @param endpointCount the cluster's endpoint count (for the position table)
   * @param start uniform in [0, 1): where round robin starts, so that proxies started together
   *   do not all send their first request to the same endpoint
   */
  constructor(members: readonly EndpointState[], endpointCount: number, start: number) {
    this.members = members;
    this.size = members.length;
    this.cumulative = new Float64Array(members.length);
    this.positions = new Int32Array(endpointCount).fill(-1);
    this.currentWeights = new Float64Array(members.length);
    let total = 0;
    let equal = true;
    members.forEach((member, i) => {
      total += member.weight;
      this.cumulative[i] = total;
      this.positions[member.index] = i;
      if (member.weight !== members[0]!.weight) equal = false;
    });
    this.totalWeight = total;
    this.equalWeights = equal;
    this.cursor = members.length === 0 ? 0 : Math.floor(start * members.length) % members.length;
  }

  /** The position of `state` among the members, or -1. */
  position(state: EndpointState): number {
    return this.positions[state.index]!;
  }

  /**
   * A member chosen with probability proportional to its weight, from `random` (uniform in
   * [0, 1)); never `avoid` unless it is the only member. Logarithmic in the member count.
   */
  draw(random: number, avoid: EndpointState | undefined): EndpointState {
    const n = this.size;
    const skip = avoid === undefined || n === 1 ? -1 : this.positions[avoid.index]!;
    if (this.equalWeights) {
      if (skip < 0) return this.members[Math.min(n - 1, Math.floor(random * n))]!;
      // Draw among the other n − 1 and step over the avoided position.
      const i = Math.min(n - 2, Math.floor(random * (n - 1)));
      return this.members[i >= skip ? i + 1 : i]!;
    }
    let target: number;
    if (skip < 0) {
      target = random * this.totalWeight;
    } else {
      // Draw over the total without the avoided weight, then step over its stretch.
      const skipped = this.members[skip]!.weight;
      target = random * (this.totalWeight - skipped);
      if (target >= this.cumulative[skip]! - skipped) target += skipped;
    }
    return this.members[this.indexAtWeight(target)]!;
  }

  /** The smallest position whose cumulative weight exceeds `target`. */
  private indexAtWeight(target: number): number {
    const cumulative = this.cumulative;
    let low = 0;
    let high = this.size - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! > target) high = middle;
      else low = middle + 1;
    }
    return low;
  }
}
