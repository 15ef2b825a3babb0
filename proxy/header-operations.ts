/** Route-configured header changes, applied to an outgoing header object in place. */
import type { HeaderOperations } from './config-model';

/** Outgoing headers as Node's HTTP/1.1 and HTTP/2 APIs take them; names lower-case. */
export type OutgoingHeaders = Record<string, string | string[]>;

/** Applies `ops` to `headers`: remove, then set, then add (a second value for an existing name). */
export function applyHeaderOperations(headers: OutgoingHeaders, ops: HeaderOperations): void {
  for (const name of ops.remove) delete headers[name];
  for (const [name, value] of ops.set) headers[name] = value;
  for (const [name, value] of ops.add) {
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
}
