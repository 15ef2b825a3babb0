/** The quota template: dispatched for the quotas a Check asks for. Fields are Mixer's. */
import type { AttributeValue } from '../attributes';
import type { CallContext, QuotaArgs, QuotaResult } from './results';
import { MAP, defineTemplate, field, type InstanceBase } from './template';

/** `quota`: the dimensions a quota is counted by (source, destination…). */
export const QUOTA = defineTemplate({
  name: 'quota',
  variety: 'quota',
  description: 'the dimensions a quota is counted by',
  fields: [field('dimensions', MAP)],
  handlerMethod: 'handleQuota',
});
export interface QuotaInstance extends InstanceBase {
  readonly dimensions: ReadonlyMap<string, AttributeValue>;
}
export interface QuotaHandler {
  handleQuota(
    instance: QuotaInstance,
    args: QuotaArgs,
    context: CallContext,
  ): Promise<QuotaResult> | QuotaResult;
}
