/**
 * `memquota`: quotas and rate limits counted in the server's memory. See README.md for
 * its configuration; config.ts for every field, default and rule; handler.ts for how a
 * call is charged.
 */
import { defineAdapter, type Handler } from '../../contract';
import type { QuotaHandler } from '../../../templates';
import { MEMQUOTA_PARAMS, validateMemquotaParams, type MemquotaParams } from './config';
import { MemquotaHandler } from './handler';

export const MEMQUOTA = defineAdapter<MemquotaParams>({
  name: 'memquota',
  description:
    'Quotas and rate limits counted in memory, per server: fixed or rolling windows, overrides by dimension',
  templates: ['quota'],
  config: MEMQUOTA_PARAMS,
  validate: validateMemquotaParams,
  build: (params, env) => new MemquotaHandler(params, env) satisfies QuotaHandler & Handler,
});

export { MEMQUOTA_PARAMS, validateMemquotaParams } from './config';
export type { MemquotaParams } from './config';
export { MemquotaHandler } from './handler';
export type { MemquotaStats } from './handler';
