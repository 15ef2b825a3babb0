/**
 * Accuracy of `npm run bench:quota`: several `switchboard server` processes share one
 * Redis; many Checks, each with its own deduplication id (so none is answered from an
 * earlier one), are sent concurrently through all of them (hundreds in flight), spread over several connections per
 * server as separate proxies would be, against one quota of each algorithm. Every grant
 * counts: the total granted must equal the limit exactly, never one more (nor fewer, since
 * more Checks than the limit arrive within one window).
 */
import { Client, credentials, status as GrpcStatus } from '@grpc/grpc-js';
import { AttributeBag, encodeCheckRequest } from '../../attributes';
import { mixer } from '../../proto';
import { redisTimeMs } from './redis-server';
import type { AccuracyQuota } from './sides';

const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
/** Fixed windows are aligned to Redis's clock: start no later than this before one ends. */
const FIXED_WINDOW_MARGIN_MS = 60_000;

export interface AccuracyResult {
  readonly algorithm: string;
  readonly checks: number;
  readonly limit: number;
  readonly granted: number;
  /** Answers with the quota refused, by quota status code. */
  readonly refused: ReadonlyMap<number, number>;
  /** Calls that failed (gRPC error) or had a non-OK precondition. */
  readonly failed: number;
  readonly elapsedMs: number;
  /** FIXED_WINDOW only: Redis's clock entered a new window during the test (then up to twice the limit may pass). */
  readonly crossedWindow: boolean;
  /**
   * What may explain a total other than the limit: a fixed window that ended during the
   * test, calls that failed or were refused for a reason other than the quota (a timed-out
   * call may still have been counted by Redis: the total then falls short, never over).
   * Empty when nothing happened but grants and RESOURCE_EXHAUSTED refusals.
   */
  readonly caveats: string;
}

/** Connections to the servers: `perServer` separate gRPC channels to each. */
export function connectClients(addresses: readonly string[], perServer: number): Client[] {
  return addresses.flatMap((address) =>
    Array.from(
      { length: perServer },
      () => new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
    ),
  );
}

interface Answer {
  readonly ok: boolean;
  readonly granted: number;
  readonly quotaCode: number;
}

function check(client: Client, body: Buffer, quota: string): Promise<Answer> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      CHECK_PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      { deadline: Date.now() + 30_000 },
      (error, response) => {
        if (error) {
          resolve({ ok: false, granted: 0, quotaCode: error.code ?? GrpcStatus.UNKNOWN });
          return;
        }
        const decoded = mixer.CheckResponse.decode(response!);
        const result = decoded.quotas[quota];
        const preconditionOk = (decoded.precondition?.status?.code ?? 0) === 0;
        resolve({
          ok: preconditionOk && result !== undefined,
          granted: Number(result?.grantedAmount ?? 0n),
          quotaCode: result?.status?.code ?? 0,
        });
      },
    );
  });
}

/**
 * Sends `checks` Checks for `quota.instance` (amount 1, deduplication ids `runId-i`),
 * `inFlight` at a time, spread round-robin over `clients`, and counts what was granted.
 * The bound keeps each call within the policy server's handler timeout (1 s) on shared
 * cores: a call that times out is refused (DEADLINE_EXCEEDED) though Redis may have counted
 * it, which would make the total look short without saying anything about exactness.
 */
export async function measureAccuracy(
  clients: readonly Client[],
  quota: AccuracyQuota,
  checks: number,
  inFlight: number,
  limit: number,
  redisPort: number,
  runId: string,
): Promise<AccuracyResult> {
  if (quota.algorithm === 'FIXED_WINDOW') {
    const left = quota.validDurationMs - (redisTimeMs(redisPort) % quota.validDurationMs);
    if (left < FIXED_WINDOW_MARGIN_MS) await new Promise((resolve) => setTimeout(resolve, left + 100));
  }
  const attributes = new AttributeBag([['destination.service.name', 'reviews']]);
  const quotas = new Map([[quota.instance, { amount: 1n, bestEffort: false }]]);
  const bodies = Array.from({ length: checks }, (_, i) =>
    Buffer.from(encodeCheckRequest({ attributes, quotas, deduplicationId: `${runId}-${i}` })),
  );
  const windowBefore = Math.floor(redisTimeMs(redisPort) / quota.validDurationMs);
  const start = process.hrtime.bigint();
  const answers: Answer[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const i = next++;
      answers[i] = await check(clients[i % clients.length]!, bodies[i]!, quota.instance);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(inFlight, checks)) }, worker));
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  const windowAfter = Math.floor(redisTimeMs(redisPort) / quota.validDurationMs);

  let granted = 0;
  let failed = 0;
  const refused = new Map<number, number>();
  for (const answer of answers) {
    if (!answer.ok) failed++;
    else if (answer.granted > 0) granted += answer.granted;
    else refused.set(answer.quotaCode, (refused.get(answer.quotaCode) ?? 0) + 1);
  }
  const crossedWindow = quota.algorithm === 'FIXED_WINDOW' && windowAfter !== windowBefore;
  const reasons: string[] = [];
  if (crossedWindow) reasons.push('crossed a window boundary');
  if (failed > 0) reasons.push(`${failed} calls failed`);
  const notExhausted = [...refused.keys()].filter((code) => code !== GrpcStatus.RESOURCE_EXHAUSTED);
  if (notExhausted.length > 0)
    reasons.push(
      `${notExhausted.reduce((n, code) => n + refused.get(code)!, 0)} refused with status ` +
        `${notExhausted.join(', ')}, not by the quota (4: the server's 1 s handler deadline; fewer in flight?)`,
    );
  return {
    algorithm: quota.algorithm,
    checks,
    limit,
    granted,
    refused,
    failed,
    elapsedMs,
    crossedWindow,
    caveats: reasons.join('; '),
  };
}
