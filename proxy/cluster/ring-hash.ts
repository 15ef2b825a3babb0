/**
 * RING_HASH: consistent hashing. Each endpoint owns points on a ring of 32-bit hashes, as many
 * as its weight times {@link VIRTUAL_NODES_PER_WEIGHT}; a request's key hashes to a point and
 * goes to the owner of the next point clockwise. The points of an endpoint depend only on its
 * id and weight, so when an endpoint leaves (unavailable, or gone from the configuration) only
 * the keys it owned move, each to the next owner along the ring; every other key keeps its
 * endpoint.
 *
 * The ring is built once over all endpoints; an unavailable owner is skipped by walking on
 * to the next available one, so health changes never rebuild it.
 */
import type { EndpointPool } from './endpoint-pool';
import type { EndpointSet } from './endpoint-set';
import type { EndpointState } from './endpoint-state';
import type { LoadBalancer } from './load-balancer';
import { hash32 } from './string-hash';

/** Ring points per unit of weight: enough to keep each endpoint's share within a few percent of its weight's. */
export const VIRTUAL_NODES_PER_WEIGHT = 128;

/**
 * The most points a ring has. Above this total weight × points per weight, every endpoint gets
 * proportionally fewer points (at least one); the stability promise then holds only
 * approximately, as the points per weight depend on the total.
 */
export const MAX_RING_SIZE = 1 << 16;

export class RingHashBalancer implements LoadBalancer {
  /** Ring points, ascending. */
  private readonly points: Uint32Array;
  /** owners[i] owns points[i]. */
  private readonly owners: readonly EndpointState[];

  constructor(
    private readonly endpoints: EndpointSet,
    private readonly random: () => number,
  ) {
    const states = endpoints.states;
    const totalWeight = states.reduce((sum, state) => sum + state.weight, 0);
    const perWeight = Math.min(VIRTUAL_NODES_PER_WEIGHT, MAX_RING_SIZE / totalWeight);
    const entries: { point: number; owner: EndpointState }[] = [];
    for (const state of states) {
      const count = Math.max(1, Math.round(state.weight * perWeight));
      for (let k = 0; k < count; k++) entries.push({ point: hash32(`${state.id}#${k}`), owner: state });
    }
    // Equal points (rare) are ordered by id, so the ring does not depend on configuration order.
    entries.sort(
      (a, b) => a.point - b.point || (a.owner.id < b.owner.id ? -1 : a.owner.id > b.owner.id ? 1 : 0),
    );
    this.points = Uint32Array.from(entries, (entry) => entry.point);
    this.owners = Object.freeze(entries.map((entry) => entry.owner));
  }

  /** The number of ring points (for tests and the admin endpoint). */
  get ringSize(): number {
    return this.points.length;
  }

  pick(pool: EndpointPool, hashKey: string | undefined, avoid: EndpointState | undefined): EndpointState {
    // A request without a key (header or cookie absent) has nothing to stick to: any endpoint will do.
    if (hashKey === undefined) return pool.size === 1 ? pool.members[0]! : pool.draw(this.random(), avoid);
    const points = this.points;
    const owners = this.owners;
    const n = points.length;
    // In panic mode the pool is every endpoint and any owner is acceptable.
    const anyOwner = pool === this.endpoints.all;
    const avoidable = pool.size > 1 ? avoid : undefined;
    let i = this.firstPointAtOrAfter(hash32(hashKey));
    for (let step = 0; step < n; step++) {
      const owner = owners[i]!;
      if ((anyOwner || owner.available) && owner !== avoidable) return owner;
      i = i + 1 === n ? 0 : i + 1;
    }
    // Unreachable: the pool's members own points on the ring.
    return pool.members[0]!;
  }

  /** Index of the first point ≥ `hash`, wrapping to 0 past the last. */
  private firstPointAtOrAfter(hash: number): number {
    const points = this.points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (points[middle]! < hash) low = middle + 1;
      else high = middle;
    }
    return low === points.length ? 0 : low;
  }
}
