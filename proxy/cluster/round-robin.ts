/**
 * ROUND_ROBIN: each endpoint in turn. With unequal weights it is smooth weighted round robin
 * (the algorithm nginx uses): every pick adds each member's weight to its running weight,
 * takes the member with the highest, and subtracts the total from the one taken. Weights
 * 5:1:1 give `a a b a c a a` rather than `a a a a a b c`, so a heavy endpoint never gets a
 * burst. Linear in the member count, which suits clusters of up to a few hundred endpoints.
 */
import type { EndpointPool } from './endpoint-pool';
import type { EndpointState } from './endpoint-state';
import type { LoadBalancer } from './load-balancer';

export class RoundRobinBalancer implements LoadBalancer {
  pick(pool: EndpointPool, _hashKey: string | undefined, avoid: EndpointState | undefined): EndpointState {
    const members = pool.members;
    const n = pool.size;
    if (n === 1) return members[0]!;
    if (pool.equalWeights) {
      let i = pool.cursor;
      let chosen = members[i]!;
      i = i + 1 === n ? 0 : i + 1;
      if (chosen === avoid) {
        chosen = members[i]!;
        i = i + 1 === n ? 0 : i + 1;
      }
      pool.cursor = i;
      return chosen;
    }
    const current = pool.currentWeights;
    let best = -1;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const member = members[i]!;
      if (member === avoid) continue;
      current[i]! += member.weight;
      total += member.weight;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    return members[best]!;
  }
}
