/**
 * The check templates: their instances are dispatched on Check, one at a time, and each
 * handler answers a CheckResult. Fields and types are Mixer's.
 */
import { ValueType, type AttributeValue, type Timestamp } from '../attributes';
import type { CallContext, CheckResult } from './results';
import { ANY, MAP, defineTemplate, field, message, valueField, type InstanceBase } from './template';

const STRING = valueField(ValueType.STRING);

/** `checknothing`: no fields; for adapters that decide from configuration alone (denier). */
export const CHECKNOTHING = defineTemplate({
  name: 'checknothing',
  variety: 'check',
  description: 'a check with no data, for adapters that decide from their configuration alone',
  fields: [],
  handlerMethod: 'handleCheckNothing',
});
export type CheckNothingInstance = InstanceBase;
export interface CheckNothingHandler {
  handleCheckNothing(
    instance: CheckNothingInstance,
    context: CallContext,
  ): Promise<CheckResult> | CheckResult;
}

/** `listentry`: one value to look up in a list (listchecker). */
export const LISTENTRY = defineTemplate({
  name: 'listentry',
  variety: 'check',
  description: 'a value to check against a list',
  fields: [field('value', ANY)],
  handlerMethod: 'handleListEntry',
});
export interface ListEntryInstance extends InstanceBase {
  readonly value: AttributeValue | undefined;
}
export interface ListEntryHandler {
  handleListEntry(instance: ListEntryInstance, context: CallContext): Promise<CheckResult> | CheckResult;
}

/** `authorization`: who does what, as Mixer's OPA and RBAC adapters received it. */
export const AUTHORIZATION = defineTemplate({
  name: 'authorization',
  variety: 'check',
  description: 'a subject and the action it attempts, for access control',
  fields: [
    field('subject', message(field('user', STRING), field('groups', STRING), field('properties', MAP))),
    field(
      'action',
      message(
        field('namespace', STRING),
        field('service', STRING),
        field('method', STRING),
        field('path', STRING),
        field('properties', MAP),
      ),
    ),
  ],
  handlerMethod: 'handleAuthorization',
});
export interface AuthorizationInstance extends InstanceBase {
  readonly subject: {
    readonly user: string;
    readonly groups: string;
    readonly properties: ReadonlyMap<string, AttributeValue>;
  };
  readonly action: {
    readonly namespace: string;
    readonly service: string;
    readonly method: string;
    readonly path: string;
    readonly properties: ReadonlyMap<string, AttributeValue>;
  };
}
export interface AuthorizationHandler {
  handleAuthorization(
    instance: AuthorizationInstance,
    context: CallContext,
  ): Promise<CheckResult> | CheckResult;
}

/** `apikey`: an API key and the operation it is used for. */
export const APIKEY = defineTemplate({
  name: 'apikey',
  variety: 'check',
  description: 'an API key and the API operation it is presented for',
  fields: [
    field('api', STRING),
    field('api_version', STRING),
    field('api_operation', STRING),
    field('api_key', STRING),
    field('timestamp', valueField(ValueType.TIMESTAMP)),
  ],
  handlerMethod: 'handleApiKey',
});
export interface ApiKeyInstance extends InstanceBase {
  readonly api: string;
  readonly apiVersion: string;
  readonly apiOperation: string;
  readonly apiKey: string;
  readonly timestamp: Timestamp | undefined;
}
export interface ApiKeyHandler {
  handleApiKey(instance: ApiKeyInstance, context: CallContext): Promise<CheckResult> | CheckResult;
}
