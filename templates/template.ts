/**
 * What a template is: the typed record (an "instance") that adapters of one kind receive,
 * with its fields and their types as Mixer defined them, its variety (check, quota or
 * report), and the handler method that receives it. Instance configurations map these
 * fields to expressions; the configuration store type-checks them against this.
 */
import type { ValueType } from '../attributes';

/** When a template's instances are dispatched: on Check, on Check's quotas, or on Report. */
export type Variety = 'check' | 'quota' | 'report';

/** The type of a template field. */
export type FieldType =
  /** A value of one type (`string`, `int64`, `TimeStamp`… in Mixer's protos). STRING also takes EMAIL_ADDRESS, URI and DNS_NAME. */
  | { readonly kind: 'value'; readonly type: ValueType }
  /** `istio.policy.v1beta1.Value`: an expression of any type. */
  | { readonly kind: 'any' }
  /** `map<string, istio.policy.v1beta1.Value>`: a mapping of names to expressions of any type. */
  | { readonly kind: 'map' }
  /** A nested message, such as authorization's `subject`. */
  | { readonly kind: 'message'; readonly fields: readonly FieldSpec[] };

/** One field: its name on instances (camelCase), its name in Mixer's protos (snake_case), its type. */
export interface FieldSpec {
  readonly name: string;
  readonly protoName: string;
  readonly type: FieldType;
}

/** A template, as the configuration store and the dispatcher see it. */
export interface TemplateInfo {
  /** Mixer's name, used in `compiledTemplate:` and as the legacy instance kind: `listentry`. */
  readonly name: string;
  readonly variety: Variety;
  readonly description: string;
  readonly fields: readonly FieldSpec[];
  /**
   * The handler method that receives its instances, e.g. `handleListEntry`. Check
   * templates take one instance, quota one instance and the quota arguments, report
   * templates a batch of instances.
   */
  readonly handlerMethod: string;
}

/** Every instance carries its fully qualified name, `name.instance.namespace`. */
export interface InstanceBase {
  readonly name: string;
}

/** Builds a field spec from its proto name: `api_version` becomes `apiVersion` on instances. */
export function field(protoName: string, type: FieldType): FieldSpec {
  return Object.freeze({
    name: protoName.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
    protoName,
    type,
  });
}

export const valueField = (type: ValueType): FieldType => Object.freeze({ kind: 'value', type });
export const ANY: FieldType = Object.freeze({ kind: 'any' });
export const MAP: FieldType = Object.freeze({ kind: 'map' });
export const message = (...fields: FieldSpec[]): FieldType => Object.freeze({ kind: 'message', fields });

export function defineTemplate(info: TemplateInfo): TemplateInfo {
  return Object.freeze({ ...info, fields: Object.freeze([...info.fields]) });
}
