/**
 * What a policy's answer means. The check method's value may be:
 *
 * - `true` or `false`, as in Mixer: false denies with PERMISSION_DENIED and Mixer's message
 *   `opa: request was rejected`;
 * - an object `{allow, reason, status, headers}`: `allow` (required) decides; a denial
 *   carries `reason` as its message and `status` as its code (a google.rpc code number or
 *   name other than OK; default PERMISSION_DENIED); `headers` asks the proxy to change the
 *   request or response headers (Mixer's RouteDirective):
 *   `headers: {request: [{name, value, operation}], response: {name: value}}`, where an
 *   operation is REPLACE (the default), APPEND or REMOVE, and the mapping form replaces.
 *
 * Anything else — no value at all (the rule is undefined and has no default), another
 * type, a malformed object — is not a decision, and the handler answers as `failClose`
 * says, as Mixer did.
 */
import { StatusCode, type HeaderOperation } from '../../../templates';

/** Mixer's OPA adapter's message for every refusal. */
export const REJECTED_MESSAGE = 'opa: request was rejected';

/** A decision the policy made. */
export interface Decision {
  readonly allow: boolean;
  /** The denial's message (Mixer's when the policy gave none). */
  readonly reason: string;
  /** The denial's code; PERMISSION_DENIED unless the policy said otherwise. */
  readonly code: number;
  readonly requestHeaderOperations: readonly HeaderOperation[];
  readonly responseHeaderOperations: readonly HeaderOperation[];
}

/** A decision, or why the answer is not one. */
export type Interpretation =
  | { readonly ok: true; readonly decision: Decision; readonly value: unknown }
  | { readonly ok: false; readonly problem: string; readonly value: unknown };

const NO_OPERATIONS: readonly HeaderOperation[] = Object.freeze([]);
const CODE_NAMES = StatusCode as Readonly<Record<string, number>>;
const MAX_CODE = Math.max(...Object.values(StatusCode));
const OPERATIONS = new Set(['REPLACE', 'APPEND', 'REMOVE']);

const ALLOW: Decision = Object.freeze({
  allow: true,
  reason: '',
  code: StatusCode.OK,
  requestHeaderOperations: NO_OPERATIONS,
  responseHeaderOperations: NO_OPERATIONS,
});
const DENY: Decision = Object.freeze({
  allow: false,
  reason: REJECTED_MESSAGE,
  code: StatusCode.PERMISSION_DENIED,
  requestHeaderOperations: NO_OPERATIONS,
  responseHeaderOperations: NO_OPERATIONS,
});

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function parseCode(value: unknown): number | string {
  if (typeof value === 'string' && value in CODE_NAMES) value = CODE_NAMES[value];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_CODE) {
    return `status must be a google.rpc code other than OK (1 to ${MAX_CODE}, or a name such as PERMISSION_DENIED), got ${show(value)}`;
  }
  return value;
}

function parseOperations(value: unknown, which: string): HeaderOperation[] | string {
  if (value === undefined) return [];
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: HeaderOperation[] = [];
    for (const [name, v] of Object.entries(value)) {
      if (typeof v !== 'string') return `headers.${which}.${name} must be a string, got ${show(v)}`;
      out.push({ name, value: v, operation: 'REPLACE' });
    }
    return out;
  }
  if (!Array.isArray(value))
    return `headers.${which} must be a list of {name, value, operation} or a mapping of names to values`;
  const out: HeaderOperation[] = [];
  for (const [i, op] of value.entries()) {
    const where = `headers.${which}[${i}]`;
    if (typeof op !== 'object' || op === null)
      return `${where} must be {name, value, operation}, got ${show(op)}`;
    const { name, value: v, operation = 'REPLACE' } = op as Record<string, unknown>;
    if (typeof name !== 'string' || name === '')
      return `${where}.name must be a header name, got ${show(name)}`;
    if (typeof operation !== 'string' || !OPERATIONS.has(operation))
      return `${where}.operation must be REPLACE, APPEND or REMOVE, got ${show(operation)}`;
    if (operation !== 'REMOVE' && typeof v !== 'string')
      return `${where}.value must be a string, got ${show(v)}`;
    out.push({
      name,
      value: operation === 'REMOVE' ? '' : (v as string),
      operation: operation as HeaderOperation['operation'],
    });
  }
  return out;
}

/** Interprets the result set the module returned for the check method. */
export function interpretResult(resultSet: unknown): Interpretation {
  if (!Array.isArray(resultSet) || resultSet.length === 0) {
    return {
      ok: false,
      problem: 'the decision is undefined: no rule of the check method applied (give it a default)',
      value: undefined,
    };
  }
  const value = (resultSet[0] as { result?: unknown }).result;
  if (value === true) return { ok: true, decision: ALLOW, value };
  if (value === false) return { ok: true, decision: DENY, value };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      problem: `the decision must be true, false or {allow, reason, status, headers}, got ${show(value)}`,
      value,
    };
  }
  const { allow, reason, status, headers, ...rest } = value as Record<string, unknown>;
  const fail = (problem: string): Interpretation => ({
    ok: false,
    problem: `the decision's ${problem}`,
    value,
  });
  if (typeof allow !== 'boolean') return fail(`allow must be true or false, got ${show(allow)}`);
  if (reason !== undefined && typeof reason !== 'string')
    return fail(`reason must be a string, got ${show(reason)}`);
  const extra = Object.keys(rest);
  if (extra.length > 0)
    return fail(`fields ${extra.join(', ')} are not known; known: allow, reason, status, headers`);
  let code: number = StatusCode.PERMISSION_DENIED;
  if (status !== undefined) {
    const parsed = parseCode(status);
    if (typeof parsed === 'string') return fail(parsed);
    code = parsed;
  }
  let request: HeaderOperation[] = [];
  let response: HeaderOperation[] = [];
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
      return fail(`headers must be {request, response}, got ${show(headers)}`);
    const { request: rq, response: rs, ...others } = headers as Record<string, unknown>;
    if (Object.keys(others).length > 0)
      return fail(`headers may have request and response only, got ${Object.keys(others).join(', ')}`);
    const parsedRequest = parseOperations(rq, 'request');
    if (typeof parsedRequest === 'string') return fail(parsedRequest);
    const parsedResponse = parseOperations(rs, 'response');
    if (typeof parsedResponse === 'string') return fail(parsedResponse);
    request = parsedRequest;
    response = parsedResponse;
  }
  return {
    ok: true,
    value,
    decision: {
      allow,
      reason: allow ? '' : reason !== undefined && reason !== '' ? reason : REJECTED_MESSAGE,
      code: allow ? StatusCode.OK : code,
      requestHeaderOperations: request,
      responseHeaderOperations: response,
    },
  };
}
