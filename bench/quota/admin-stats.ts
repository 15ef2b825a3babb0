/**
 * The policy server's own counters, read from its admin endpoint (`GET /stats`): how many
 * calls of a run Redis granted and denied (redisquota's counters), how many the failure
 * policy answered because Redis did not answer in time, and how many handler calls the
 * dispatcher gave up on. A run with any of the last two did not measure decisions alone
 * and is flagged.
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

/** What one `GET /stats` says about a run's calls. */
export interface ServerCounts {
  /** The dispatcher's handler faults so far (a handler past its 1 s deadline among them). */
  readonly handlerFaults: number;
  /** The redisquota quota's decision counters; undefined when none was asked for. */
  readonly quota: DecisionCounts | undefined;
}

/**
 * The dispatcher's fault count and, when `quotaName` (a configured quota name) is given,
 * the counters of redisquota handler `handler`'s quota of that name.
 * @throws Error when the endpoint does not answer or does not list that quota
 */
export async function serverCounts(
  adminAddress: string,
  handler: string,
  quotaName: string | undefined,
): Promise<ServerCounts> {
  const stats = (await fetchJson(`http://${adminAddress}/stats`)) as {
    dispatcher?: { handlerFaults?: number } | null;
    handlers?: Record<string, { quotas?: QuotaStats[] } | undefined>;
  };
  const handlerFaults = stats.dispatcher?.handlerFaults ?? 0;
  if (quotaName === undefined) return { handlerFaults, quota: undefined };
  const quota = stats.handlers?.[handler]?.quotas?.find((q) => q.name === quotaName);
  if (quota === undefined)
    throw new Error(`/stats of ${adminAddress} lists no quota ${quotaName} of ${handler}`);
  return { handlerFaults, quota: quota.counters };
}

/** after − before, counter by counter. */
export function countsBetween(before: DecisionCounts, after: DecisionCounts): DecisionCounts {
  return {
    granted: after.granted - before.granted,
    denied: after.denied - before.denied,
    fallback: after.fallback - before.fallback,
  };
}
