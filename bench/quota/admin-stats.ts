/**
 * redisquota's own decision counters, read from the policy server's admin endpoint
 * (`GET /stats`): how many calls of a run Redis granted and denied, and how many the
 * failure policy answered because Redis did not answer in time (a run with any such
 * answer did not measure Redis's decisions and is flagged).
 */
import { get } from 'node:http';

export interface DecisionCounts {
  readonly granted: number;
  readonly denied: number;
  readonly fallback: number;
}

interface QuotaStats {
  readonly name: string;
  readonly counters: DecisionCounts;
}

function fetchJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`GET ${url}: ${response.statusCode} ${body}`));
        else {
          try {
            resolve(JSON.parse(body));
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        }
      });
    });
    request.setTimeout(10_000, () => request.destroy(new Error(`GET ${url}: no answer within 10 s`)));
    request.on('error', reject);
  });
}

/**
 * The counters of redisquota handler `handler`'s quota `quotaName` (its configured name).
 * @throws Error when the endpoint does not answer or does not list that quota
 */
export async function redisquotaCounts(
  adminAddress: string,
  handler: string,
  quotaName: string,
): Promise<DecisionCounts> {
  const stats = (await fetchJson(`http://${adminAddress}/stats`)) as {
    handlers?: Record<string, { quotas?: QuotaStats[] } | undefined>;
  };
  const quota = stats.handlers?.[handler]?.quotas?.find((q) => q.name === quotaName);
  if (quota === undefined)
    throw new Error(`/stats of ${adminAddress} lists no quota ${quotaName} of ${handler}`);
  return quota.counters;
}

/** after − before, counter by counter. */
export function countsBetween(before: DecisionCounts, after: DecisionCounts): DecisionCounts {
  return {
    granted: after.granted - before.granted,
    denied: after.denied - before.denied,
    fallback: after.fallback - before.fallback,
  };
}
