/**
 * What a policy receives as `input`:
 *
 * - `authorization` instances as Mixer's OPA adapter passed them:
 *   `{subject: {user, groups, properties}, action: {namespace, service, method, path,
 *   properties}}`, where empty strings and empty property maps are left out and `groups`,
 *   when set, is a list of that one string.
 * - `checknothing`: every attribute of the request, `{attributes: {"source.uid": …}}`.
 *
 * Attribute values become JSON as `switchboard eval` prints them: strings, numbers
 * (INT64 beyond 2^53 as a decimal string), booleans, TIMESTAMP as RFC 3339 text, DURATION
 * as a Go duration string (`"1.5s"`), IP_ADDRESS as its text, BYTES as base64, a string
 * map as an object. Mixer handed Go values to OPA instead, so there a duration was a number
 * of nanoseconds and an IP address the base64 of its bytes.
 */
import {
  Duration,
  IpAddress,
  isStringMap,
  Timestamp,
  type AttributeValue,
  type Bag,
} from '../../../attributes';
import type { AuthorizationInstance } from '../../../templates';

const TWO_POW_53 = 2n ** 53n;

/** An attribute value as JSON. A string map is iterated whole (so all its keys become referenced). */
export function attributeJson(value: AttributeValue): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value > TWO_POW_53 || value < -TWO_POW_53 ? value.toString() : Number(value);
    default:
      if (value instanceof Timestamp || value instanceof Duration || value instanceof IpAddress)
        return value.toString();
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      if (isStringMap(value)) {
        const out: Record<string, string> = {};
        for (const [k, v] of value) out[k] = v;
        return out;
      }
      return String(value);
  }
}

function propertiesJson(
  properties: ReadonlyMap<string, AttributeValue>,
): Record<string, unknown> | undefined {
  if (properties.size === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of properties) out[k] = attributeJson(v);
  return out;
}

/** The input for an `authorization` instance (Mixer's shape). */
export function authorizationInput(instance: AuthorizationInstance): Record<string, unknown> {
  const subject: Record<string, unknown> = {};
  const { user, groups, properties: subjectProperties } = instance.subject;
  if (user !== '') subject.user = user;
  // Mixer passed the template's one groups string as a list of it (its repeated field was not supported).
  if (groups !== '') subject.groups = [groups];
  const sp = propertiesJson(subjectProperties);
  if (sp !== undefined) subject.properties = sp;

  const action: Record<string, unknown> = {};
  const { namespace, service, method, path, properties: actionProperties } = instance.action;
  if (namespace !== '') action.namespace = namespace;
  if (service !== '') action.service = service;
  if (method !== '') action.method = method;
  if (path !== '') action.path = path;
  const ap = propertiesJson(actionProperties);
  if (ap !== undefined) action.properties = ap;
  return { action, subject };
}

/**
 * The input for a `checknothing` instance: every attribute of the request. Reading them
 * through the dispatcher's recording bag records each as referenced.
 */
export function attributesInput(attributes: Bag): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of [...attributes.names()].sort()) {
    const value = attributes.get(name);
    if (value !== undefined) out[name] = attributeJson(value);
  }
  return { attributes: out };
}
