/**
 * The redisquota handler: quotas counted in Redis, exact across any number of policy
 * servers sharing it.
 *
 * A call finds the quota configured for its instance and the limit for its dimensions (the
 * first override whose dimensions all match, else the quota's own), then runs the quota
 * script (quota-script.ts) once: decide, charge and remember the deduplication id in one
 * atomic step. Keys are `keyPrefix{instance}:algorithm:windowMs:dimensions`, and the
 * deduplication entry `keyPrefix{instance}:dedup:id`: the instance name in braces is the
 * Cluster hash tag, so everything one decision touches lives in one slot. A change of
 * algorithm or window starts new counters rather than misreading old ones.
 *
 * When Redis does not answer within `timeout`, the quota's `onRedisFailure` answers:
 * FAIL_OPEN grants, FAIL_CLOSE denies with UNAVAILABLE, LOCAL_FALLBACK counts
 * `fallbackPercent` of the limit in this process's memory. The outage is logged once when
 * it starts (with its cause) and once when Redis answers again, and every such decision
 * is counted.
 */
import {
  OK_STATUS,
  StatusCode,
  type CallContext,
  type QuotaArgs,
  type QuotaHandler,
  type QuotaInstance,
  type QuotaResult,
} from '../../../templates';
import type { AdapterEnv, Handler, TimerHandle } from '../../contract';
import { joinPath } from '../../schema';
import {
  compileDimensionCondition,
  counterKey,
  firstMatchingOverride,
  FixedWindowLimit,
  formatDurationMs,
  RollingWindowLimit,
  type DimensionCondition,
  type WindowLimit,
  QuotaLookup,
} from '../common';
import type {
  RedisFailurePolicy,
  RedisquotaParams,
  RedisQuotaParams,
  RedisRateLimitAlgorithm,
} from './config';
import { ALGORITHM_CODE, readDecision } from './quota-script';
import { RedisPool } from './redis-pool';

/** Decisions made for one quota or override, since the handler was built. */
export interface DecisionCounters {
  /** Answered OK with something granted (shadow-mode grants of what would be denied excluded). */
  granted: number;
  /** Answered RESOURCE_EXHAUSTED by Redis's count. */
  denied: number;
  /** Shadow mode: would have been denied, answered with a grant. */
  shadowDenied: number;
  /** Answered without Redis, by the quota's failure policy. */
  fallback: number;
}

/** One limit as configured, with its counters: what `stats()` shows per quota and override. */
export interface LimitView {
  readonly maxAmount: number;
  readonly validDurationMs: number;
  readonly burstSize?: number;
  readonly counters: Readonly<DecisionCounters>;
}

export interface QuotaView extends LimitView {
  readonly name: string;
  readonly rateLimitAlgorithm: RedisRateLimitAlgorithm;
  readonly bucketDurationMs?: number;
  readonly shadowMode: boolean;
  readonly onRedisFailure: RedisFailurePolicy;
  readonly fallbackPercent?: number;
  readonly overrides: readonly (LimitView & { readonly dimensions: Readonly<Record<string, string>> })[];
}

/** What `stats()` answers: Redis's state and every quota's configuration and counters. */
export interface RedisquotaStats {
  readonly redis: {
    readonly connected: boolean;
    /** When the outage going on began (ISO 8601), or null. */
    readonly outageSince: string | null;
    readonly outages: number;
    /** Calls Redis did not answer. */
    readonly failedCalls: number;
  };
  readonly quotas: readonly QuotaView[];
}

/** A limit ready to serve: what the script gets, and the local limit of the fallback. */
interface LimitPlan {
  readonly path: string;
  readonly maxAmount: number;
  readonly validDurationMs: number;
  /** The script's fourth argument: the bucket (ROLLING_WINDOW) or the burst (TOKEN_BUCKET). */
  readonly extra: number;
  readonly burstSize: number | undefined;
  readonly local: WindowLimit | undefined;
  readonly counters: DecisionCounters;
}

interface OverridePlan extends LimitPlan {
  readonly conditions: readonly DimensionCondition[];
  readonly dimensions: Readonly<Record<string, string>>;
}

interface QuotaPlan {
  readonly params: RedisQuotaParams;
  readonly algorithm: string;
  readonly own: LimitPlan;
  readonly overrides: readonly OverridePlan[];
}

const NOTHING_ASKED: QuotaResult = Object.freeze({ status: OK_STATUS, grantedAmount: 0, validDurationMs: 0 });
/** How long answers made without Redis hold: short, so proxies come back soon once it is back. */
const FALLBACK_VALID_DURATION_MS = 1000;
const LOCAL_SWEEP_INTERVAL_MS = 1000;

export class RedisquotaHandler implements QuotaHandler, Handler {
  private readonly quotas: QuotaLookup<QuotaPlan>;
  private readonly sweeper: TimerHandle | undefined;
  private outageSinceMs: number | undefined;
  private outages = 0;
  private failedCalls = 0;
  private closed = false;

  private constructor(
    private readonly params: RedisquotaParams,
    private readonly pool: RedisPool,
    private readonly env: AdapterEnv,
  ) {
    const quotas = new Map<string, QuotaPlan>();
    params.quotas.forEach((quota, q) => quotas.set(quota.name, planQuota(quota, joinPath('quotas', q))));
    this.quotas = new QuotaLookup(quotas, `redisquota handler ${env.handlerName}`);
    const locals = [...quotas.values()].flatMap((plan) =>
      [plan.own, ...plan.overrides].flatMap((limit) => (limit.local === undefined ? [] : [limit.local])),
    );
    this.sweeper =
      locals.length === 0
        ? undefined
        : env.every(() => {
            const nowMs = env.now();
            for (const local of locals) local.sweep(nowMs);
          }, LOCAL_SWEEP_INTERVAL_MS);
  }

  /**
   * Connects (waiting up to 2 s; a Redis that is down is an outage, not an error) and
   * builds the handler. `params` must have passed validateRedisquotaParams.
   */
  static async build(params: RedisquotaParams, env: AdapterEnv): Promise<RedisquotaHandler> {
    // Connection errors may come before the handler exists: they reach it once it does.
    const sink: { handler?: RedisquotaHandler } = {};
    const pool = await RedisPool.open(params, (error) => sink.handler?.connectionError(error));
    const handler = new RedisquotaHandler(params, pool, env);
    sink.handler = handler;
    if (!pool.connected) handler.redisFailed(new Error('no connection to Redis within 2 s of starting'));
    return handler;
  }

  /**
   * Charges `args.amount` in Redis. An exhausted quota is a result (RESOURCE_EXHAUSTED); so
   * is an outage under FAIL_CLOSE (UNAVAILABLE).
   * @throws Error when the handler is closed, or no quota is configured for the instance
   */
  async handleQuota(instance: QuotaInstance, args: QuotaArgs, _context: CallContext): Promise<QuotaResult> {
    if (this.closed) {
      throw new Error(
        `redisquota handler ${this.env.handlerName} is closed: it no longer serves quota calls`,
      );
    }
    const quota = this.quotas.of(instance.name);
    const { amount } = args;
    if (!Number.isSafeInteger(amount) || amount < 0) {
      return {
        status: {
          code: StatusCode.INVALID_ARGUMENT,
          message: `redisquota: the amount asked of quota ${instance.name} must be a whole number >= 0, got ${amount}`,
        },
        grantedAmount: 0,
        validDurationMs: 0,
      };
    }
    if (amount === 0) return NOTHING_ASKED;
    const limit = firstMatchingOverride(quota.overrides, instance.dimensions) ?? quota.own;

    const tag = `${this.params.keyPrefix}{${instance.name}}`;
    const keys = [
      `${tag}:${quota.algorithm}:${limit.validDurationMs}:${counterKey('', instance.dimensions)}`,
    ];
    if (args.deduplicationId !== '') keys.push(`${tag}:dedup:${args.deduplicationId}`);
    let reply: unknown;
    try {
      reply = await this.pool.runQuotaScript(keys, [
        quota.algorithm,
        limit.maxAmount,
        limit.validDurationMs,
        limit.extra,
        amount,
        args.bestEffort ? 1 : 0,
        this.params.deduplicationWindow,
      ]);
    } catch (error) {
      this.redisFailed(error);
      return this.withoutRedis(quota, limit, instance, args, error);
    }
    this.redisAnswered();
    const decision = readDecision(reply);
    if (decision.granted > 0) {
      if (!decision.repeated) limit.counters.granted++;
      return {
        status: OK_STATUS,
        grantedAmount: decision.granted,
        validDurationMs: decision.validDurationMs,
      };
    }
    if (quota.params.shadowMode) {
      if (!decision.repeated) limit.counters.shadowDenied++;
      return { status: OK_STATUS, grantedAmount: amount, validDurationMs: decision.validDurationMs };
    }
    if (!decision.repeated) limit.counters.denied++;
    return {
      status: {
        code: StatusCode.RESOURCE_EXHAUSTED,
        message:
          `redisquota: quota ${instance.name} is exhausted: asked for ${amount}, ` +
          `${Math.max(decision.available, 0)} left of ${describeLimit(limit)} (${limit.path})`,
      },
      grantedAmount: 0,
      validDurationMs: decision.validDurationMs,
    };
  }

  /** Redis's state and every quota's configuration and counters. */
  stats(): RedisquotaStats {
    return {
      redis: {
        connected: this.pool.connected,
        outageSince: this.outageSinceMs === undefined ? null : new Date(this.outageSinceMs).toISOString(),
        outages: this.outages,
        failedCalls: this.failedCalls,
      },
      quotas: [...this.quotas.values()].map(describeQuota),
    };
  }

  /** Closes the connections and stops the fallback's sweep. Idempotent; calls afterwards throw. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweeper?.cancel();
    await this.pool.close(this.env.logger);
  }

  private withoutRedis(
    quota: QuotaPlan,
    limit: LimitPlan,
    instance: QuotaInstance,
    args: QuotaArgs,
    error: unknown,
  ): QuotaResult {
    limit.counters.fallback++;
    const policy = quota.params.onRedisFailure;
    if (policy === 'FAIL_OPEN' || quota.params.shadowMode) {
      return { status: OK_STATUS, grantedAmount: args.amount, validDurationMs: FALLBACK_VALID_DURATION_MS };
    }
    if (policy === 'FAIL_CLOSE' || limit.local === undefined) {
      return {
        status: {
          code: StatusCode.UNAVAILABLE,
          message: `redisquota: Redis does not answer (${describeError(error)}); quota ${instance.name} fails closed`,
        },
        grantedAmount: 0,
        validDurationMs: FALLBACK_VALID_DURATION_MS,
      };
    }
    const charge = limit.local.charge(
      counterKey(instance.name, instance.dimensions),
      this.env.now(),
      args.amount,
      args.bestEffort,
    );
    if (charge.granted > 0) {
      return {
        status: OK_STATUS,
        grantedAmount: charge.granted,
        validDurationMs: Math.min(charge.validDurationMs, FALLBACK_VALID_DURATION_MS),
      };
    }
    return {
      status: {
        code: StatusCode.RESOURCE_EXHAUSTED,
        message:
          `redisquota: quota ${instance.name} is exhausted (counted locally while Redis does not answer): ` +
          `asked for ${args.amount}, ${charge.available} left of this server's ${limit.local.maxAmount} per ` +
          `${formatDurationMs(limit.local.validDurationMs)} (${limit.path})`,
      },
      grantedAmount: 0,
      validDurationMs: Math.min(charge.validDurationMs, FALLBACK_VALID_DURATION_MS),
    };
  }

  private connectionError(error: Error): void {
    if (this.outageSinceMs === undefined && !this.closed && !this.pool.connected) this.redisFailed(error);
  }

  /** Logs an outage once, when it begins. */
  private redisFailed(error: unknown): void {
    this.failedCalls++;
    if (this.outageSinceMs !== undefined) return;
    this.outageSinceMs = this.env.now();
    this.outages++;
    this.env.logger.warn(
      `redisquota handler ${this.env.handlerName}: Redis does not answer (${describeError(error)}); ` +
        'each quota follows its onRedisFailure policy until it does',
    );
  }

  private redisAnswered(): void {
    if (this.outageSinceMs === undefined) return;
    const lasted = this.env.now() - this.outageSinceMs;
    this.outageSinceMs = undefined;
    this.env.logger.info(
      `redisquota handler ${this.env.handlerName}: Redis answers again after ${formatDurationMs(Math.max(lasted, 0))}; ` +
        'quotas are counted in Redis again',
    );
  }
}

function planQuota(quota: RedisQuotaParams, path: string): QuotaPlan {
  const algorithm = quota.rateLimitAlgorithm;
  const limit = (
    at: string,
    maxAmount: number,
    validDurationMs: number,
    burstSize: number | undefined,
  ): LimitPlan => {
    const burst = algorithm === 'TOKEN_BUCKET' ? (burstSize ?? maxAmount) : undefined;
    return {
      path: at,
      maxAmount,
      validDurationMs,
      extra: algorithm === 'ROLLING_WINDOW' ? quota.bucketDuration : (burst ?? 0),
      burstSize: burst,
      local:
        quota.onRedisFailure === 'LOCAL_FALLBACK' && quota.fallbackPercent !== undefined
          ? localLimit(
              algorithm,
              Math.floor((maxAmount * quota.fallbackPercent) / 100),
              validDurationMs,
              quota,
            )
          : undefined,
      counters: { granted: 0, denied: 0, shadowDenied: 0, fallback: 0 },
    };
  };
  return {
    params: quota,
    algorithm: ALGORITHM_CODE[algorithm],
    own: limit(path, quota.maxAmount, quota.validDuration, quota.burstSize),
    overrides: quota.overrides.map((override, o) => ({
      ...limit(
        joinPath(joinPath(path, 'overrides'), o),
        override.maxAmount,
        override.validDuration ?? quota.validDuration,
        override.burstSize,
      ),
      dimensions: override.dimensions,
      conditions: Object.entries(override.dimensions).map(([name, text]) =>
        compileDimensionCondition(name, text),
      ),
    })),
  };
}

/** The local limit of LOCAL_FALLBACK: rolling windows stay rolling; a token bucket becomes a fixed window. */
function localLimit(
  algorithm: RedisRateLimitAlgorithm,
  maxAmount: number,
  validDurationMs: number,
  quota: RedisQuotaParams,
): WindowLimit {
  return algorithm === 'ROLLING_WINDOW'
    ? new RollingWindowLimit(maxAmount, validDurationMs, quota.bucketDuration)
    : new FixedWindowLimit(maxAmount, validDurationMs);
}

function describeLimit(limit: LimitPlan): string {
  const per = `${limit.maxAmount} per ${formatDurationMs(limit.validDurationMs)}`;
  return limit.burstSize === undefined ? per : `${per} (burst ${limit.burstSize})`;
}

function describeQuota(plan: QuotaPlan): QuotaView {
  const { params } = plan;
  const view = (limit: LimitPlan): LimitView => ({
    maxAmount: limit.maxAmount,
    validDurationMs: limit.validDurationMs,
    ...(limit.burstSize === undefined ? {} : { burstSize: limit.burstSize }),
    counters: { ...limit.counters },
  });
  return {
    name: params.name,
    rateLimitAlgorithm: params.rateLimitAlgorithm,
    ...view(plan.own),
    ...(params.rateLimitAlgorithm === 'ROLLING_WINDOW' ? { bucketDurationMs: params.bucketDuration } : {}),
    shadowMode: params.shadowMode,
    onRedisFailure: params.onRedisFailure,
    ...(params.fallbackPercent === undefined ? {} : { fallbackPercent: params.fallbackPercent }),
    overrides: plan.overrides.map((o) => ({ dimensions: o.dimensions, ...view(o) })),
  };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
