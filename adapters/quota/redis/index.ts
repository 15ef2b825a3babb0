/**
 * `redisquota`: quotas and rate limits counted in Redis, exact across policy-server
 * replicas. See README.md for its configuration; config.ts for every field and rule;
 * quota-script.ts for how a decision is made; handler.ts for failures and counters.
 */
import type { QuotaHandler } from '../../../templates';
import { defineAdapter, type Handler } from '../../contract';
import { REDISQUOTA_PARAMS, validateRedisquotaParams, type RedisquotaParams } from './config';
import { RedisquotaHandler } from './handler';

export const REDISQUOTA = defineAdapter<RedisquotaParams>({
  name: 'redisquota',
  description:
    'Quotas and rate limits counted in Redis, exact across replicas: fixed and rolling windows, token bucket, overrides, shadow mode',
  templates: ['quota'],
  config: REDISQUOTA_PARAMS,
  validate: validateRedisquotaParams,
  build: async (params, env) => (await RedisquotaHandler.build(params, env)) satisfies QuotaHandler & Handler,
});

export { REDISQUOTA_PARAMS, validateRedisquotaParams, parseRedisEndpoint } from './config';
export type { RedisquotaParams, RedisFailurePolicy, RedisRateLimitAlgorithm } from './config';
export { RedisquotaHandler } from './handler';
export type { RedisquotaStats, QuotaView, DecisionCounters } from './handler';
