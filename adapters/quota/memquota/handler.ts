/**
 * The memquota handler: quotas counted in this process's memory. Exact for one server;
 * replicas do not share counts (use redisquota for that), and a restart forgets them.
 *
 * A call finds the quota configured for its instance, then the limit for its dimensions
 * (the first override whose dimensions all match, else the quota's own), and charges the
 * counter of its instance name and dimensions. Calls are synchronous, so each charge is
 * atomic.
 */
import type { AttributeValue } from '../../../attributes';
import {
  OK_STATUS,
  type CallContext,
  StatusCode,
  type QuotaArgs,
  type QuotaHandler,
  type QuotaInstance,
  type QuotaResult,
} from '../../../templates';
import type { AdapterEnv, Handler, TimerHandle } from '../../contract';
import { joinPath } from '../../schema';
import { formatDurationMs, validateMemquotaParams, type MemquotaParams, type QuotaParams } from './config';
import { counterKey, QuotaLookup } from '../common';
import { DeduplicationCache } from './deduplication';
import { compileDimensionCondition, firstMatchingOverride, type DimensionCondition } from '../common';
import { FixedWindowLimit, RollingWindowLimit, type WindowLimit } from '../common';

/** What a handler holds, for tests and diagnostics. */
export interface MemquotaStats {
  /** Counters held: one per instance and dimensions charged in a window that has not ended. */
  readonly counters: number;
  /** Deduplication ids remembered: those seen within minDeduplicationDuration. */
  readonly deduplicationIds: number;
}

/** A limit and where it was configured (`quotas[0]`, `quotas[0].overrides[1]`), for messages. */
interface ConfiguredLimit {
  readonly limit: WindowLimit;
  readonly path: string;
}

interface OverridePlan extends ConfiguredLimit {
  readonly conditions: readonly DimensionCondition[];
}

/** A configured quota, ready to serve. */
interface QuotaPlan {
  readonly overrides: readonly OverridePlan[];
  readonly own: ConfiguredLimit;
}

/** Sweeps run at least this often and at most this often, whatever the durations configured. */
const MIN_SWEEP_INTERVAL_MS = 1000;
const MAX_SWEEP_INTERVAL_MS = 60_000;

const NOTHING_ASKED: QuotaResult = Object.freeze({ status: OK_STATUS, grantedAmount: 0, validDurationMs: 0 });

export class MemquotaHandler implements QuotaHandler, Handler {
  private readonly quotas: QuotaLookup<QuotaPlan>;
  /** Instance name to its quota, found once per instance name. */
  private readonly limits: readonly WindowLimit[];
  private readonly deduplication: DeduplicationCache;
  private readonly sweeper: TimerHandle;
  private closed = false;

  /** @throws Error when `params` do not validate (see validateMemquotaParams) */
  constructor(
    params: MemquotaParams,
    private readonly env: AdapterEnv,
  ) {
    const problems = validateMemquotaParams(params);
    if (problems.length > 0) {
      const list = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      throw new Error(`memquota handler ${env.handlerName}: invalid params: ${list}`);
    }
    const quotas = new Map<string, QuotaPlan>();
    params.quotas.forEach((quota, q) => quotas.set(quota.name, planQuota(quota, joinPath('quotas', q))));
    this.quotas = new QuotaLookup(quotas, `memquota handler ${env.handlerName}`);
    this.limits = [...quotas.values()].flatMap((plan) => [
      plan.own.limit,
      ...plan.overrides.map((o) => o.limit),
    ]);
    this.deduplication = new DeduplicationCache(params.minDeduplicationDuration);

    // Calls sweep what they touch; this sweep frees the rest once traffic stops.
    const shortest = Math.min(params.minDeduplicationDuration, ...this.limits.map((l) => l.validDurationMs));
    const interval = Math.min(Math.max(shortest, MIN_SWEEP_INTERVAL_MS), MAX_SWEEP_INTERVAL_MS);
    this.sweeper = env.every(() => this.sweep(), interval);
  }

  /**
   * Charges `args.amount` to the instance's counter. An exhausted quota is a result
   * (RESOURCE_EXHAUSTED, nothing granted); an amount that is not a whole number >= 0 is
   * INVALID_ARGUMENT.
   *
   * @throws Error when the handler is closed, or no quota is configured for the instance
   */
  handleQuota(instance: QuotaInstance, args: QuotaArgs, _context: CallContext): QuotaResult {
    if (this.closed) {
      throw new Error(`memquota handler ${this.env.handlerName} is closed: it no longer serves quota calls`);
    }
    const quota = this.quotas.of(instance.name);
    const { amount } = args;
    if (!Number.isSafeInteger(amount) || amount < 0) {
      return {
        status: {
          code: StatusCode.INVALID_ARGUMENT,
          message: `memquota: the amount asked of quota ${instance.name} must be a whole number >= 0, got ${amount}`,
        },
        grantedAmount: 0,
        validDurationMs: 0,
      };
    }
    // As Mixer's memquota: asking for nothing is granted nothing, and remembered nowhere.
    if (amount === 0) return NOTHING_ASKED;

    const nowMs = this.env.now();
    this.deduplication.sweep(nowMs);
    const deduplicationKey =
      args.deduplicationId === '' ? undefined : DeduplicationCache.key(instance.name, args.deduplicationId);
    if (deduplicationKey !== undefined) {
      const earlier = this.deduplication.recall(deduplicationKey, nowMs);
      if (earlier !== undefined) return earlier;
    }

    const { limit, path } = selectLimit(quota, instance.dimensions);
    limit.sweep(nowMs);
    const charge = limit.charge(
      counterKey(instance.name, instance.dimensions),
      nowMs,
      amount,
      args.bestEffort,
    );
    const result: QuotaResult =
      charge.granted > 0
        ? { status: OK_STATUS, grantedAmount: charge.granted, validDurationMs: charge.validDurationMs }
        : {
            status: {
              code: StatusCode.RESOURCE_EXHAUSTED,
              message:
                `memquota: quota ${instance.name} is exhausted: asked for ${amount}, ` +
                `${charge.available} left of ${limit.maxAmount} per ${formatDurationMs(limit.validDurationMs)} (${path})`,
            },
            grantedAmount: 0,
            validDurationMs: charge.validDurationMs,
          };
    if (deduplicationKey !== undefined) this.deduplication.remember(deduplicationKey, nowMs, result);
    return result;
  }

  /** What the handler holds now. */
  stats(): MemquotaStats {
    let counters = 0;
    for (const limit of this.limits) counters += limit.counterCount;
    return { counters, deduplicationIds: this.deduplication.size };
  }

  /** Drops every counter and deduplication id that has expired by now; the environment's timer calls it. */
  sweep(): void {
    if (this.closed) return;
    const nowMs = this.env.now();
    for (const limit of this.limits) limit.sweep(nowMs);
    this.deduplication.sweep(nowMs);
  }

  /** Forgets all counts and stops the sweep. Idempotent; calls afterwards throw. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweeper.cancel();
    for (const limit of this.limits) limit.clear();
    this.deduplication.clear();
    this.quotas.clear();
  }
}

function planQuota(quota: QuotaParams, path: string): QuotaPlan {
  const limitOf = (maxAmount: number, validDurationMs: number): WindowLimit =>
    quota.rateLimitAlgorithm === 'FIXED_WINDOW'
      ? new FixedWindowLimit(maxAmount, validDurationMs)
      : new RollingWindowLimit(maxAmount, validDurationMs, quota.bucketDuration);
  return {
    own: { limit: limitOf(quota.maxAmount, quota.validDuration), path },
    overrides: quota.overrides.map((override, o) => ({
      conditions: Object.entries(override.dimensions).map(([name, text]) =>
        compileDimensionCondition(name, text),
      ),
      limit: limitOf(override.maxAmount, override.validDuration ?? quota.validDuration),
      path: joinPath(joinPath(path, 'overrides'), o),
    })),
  };
}

/** The first override whose every dimension matches, else the quota's own limit. */
function selectLimit(quota: QuotaPlan, dimensions: ReadonlyMap<string, AttributeValue>): ConfiguredLimit {
  return firstMatchingOverride(quota.overrides, dimensions) ?? quota.own;
}
