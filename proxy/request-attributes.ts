/**
 * A request's attributes for a check, read from its facts when asked. A decision-cache hit
 * reads only the few attributes its decision referenced (a header, the path, the service),
 * so those are answered straight from the facts; the whole bag (buildRequestAttributes) is
 * made only when something asks for another attribute or for every name — a Check sent to
 * the server. What the check adds (`check.cache_hit`, …) is kept beside the facts.
 *
 * `get` answers exactly what buildRequestAttributes(facts).get answers, for every name;
 * test/proxy/request-attributes.test.ts holds the two to that.
 */
import { AttributeBag, FlatStringMap, type AttributeValue, type Bag, type StringMap } from '../attributes';
import {
  addResponseAttributes,
  buildRequestAttributes,
  ipOf,
  NODE_ATTRIBUTE_NAMES,
  REQUEST_ATTRIBUTE_NAMES,
  hostOf,
  nodeAttributesOf,
  requestHeaderPairs,
} from './attribute-builder';
import type { HttpRequestFacts } from './traffic-facts';

/** The attributes a check reads and adds to: an AttributeBag, or a request's (below). */
export interface CheckAttributes extends Bag {
  set(name: string, value: AttributeValue): unknown;
}

export class RequestAttributes implements CheckAttributes {
  /** The whole bag, once made. */
  private whole: AttributeBag | undefined;
  /** What was set before the whole bag was made. */
  private added: Map<string, AttributeValue> | undefined;
  private headers: RequestHeaders | undefined;

  constructor(private readonly facts: HttpRequestFacts) {}

  get(name: string): AttributeValue | undefined {
    if (this.whole !== undefined) return this.whole.get(name);
    const added = this.added?.get(name);
    if (added !== undefined || !REQUEST_ATTRIBUTE_NAMES.has(name)) return added;
    const facts = this.facts;
    switch (name) {
      case 'request.headers':
        return (this.headers ??= new RequestHeaders(facts));
      case 'request.path':
        return facts.url;
      case 'request.url_path':
        return facts.urlPath;
      case 'request.method':
        return facts.method;
      case 'request.host':
        return facts.authority;
      case 'request.id':
        return facts.requestId;
      case 'request.scheme':
        return facts.secure ? 'https' : 'http';
      case 'context.protocol':
        return facts.protocol;
      case 'api.operation':
        return facts.routeName;
      case 'destination.service.name':
        return facts.role === 'outbound' ? facts.clusterName : undefined;
      case 'destination.service.host':
        return facts.role === 'inbound' || facts.clusterName !== undefined
          ? hostOf(facts.authority)
          : undefined;
      case 'source.ip':
        return ipOf(facts.remoteAddress);
      // Inbound only: outbound, the endpoint is the destination, known once the request went.
      case 'destination.ip':
        return facts.role === 'inbound' ? ipOf(facts.localAddress) : undefined;
      case 'destination.port':
        return facts.role === 'inbound' ? BigInt(facts.localPort) : undefined;
      case 'request.useragent':
        return stringHeader(facts, 'user-agent');
      case 'request.referer':
        return stringHeader(facts, 'referer');
    }
    if (NODE_ATTRIBUTE_NAMES.has(name)) {
      for (const attribute of nodeAttributesOf(facts.node, facts.role)) {
        if (attribute.name === name) return attribute.value;
      }
      return undefined;
    }
    return this.bag().get(name);
  }

  names(): Iterable<string> {
    return this.bag().names();
  }

  set(name: string, value: AttributeValue): this {
    if (this.whole !== undefined) this.whole.set(name, value);
    else (this.added ??= new Map()).set(name, value);
    return this;
  }

  /** The whole bag, with what was set: from now on the attributes live there. */
  bag(): AttributeBag {
    let whole = this.whole;
    if (whole === undefined) {
      whole = buildRequestAttributes(this.facts);
      if (this.added !== undefined) for (const [name, value] of this.added) whole.set(name, value);
      this.whole = whole;
      this.added = undefined;
    }
    return whole;
  }
}

/**
 * An HTTP request's Report attributes as a bag, for a hook that wants one: the check's
 * attributes (`checked`, with what the check added) or the request's, with the response's.
 * `checked` is used up: call this once, after the check.
 */
export function completedRequestAttributes(facts: HttpRequestFacts, checked: Bag | undefined): AttributeBag {
  const bag =
    checked === undefined
      ? buildRequestAttributes(facts)
      : checked instanceof RequestAttributes
        ? checked.bag()
        : bagOf(checked);
  return addResponseAttributes(bag, facts);
}

/** A request header the bag builder reads as a plain attribute: a single value, or none. */
function stringHeader(facts: HttpRequestFacts, name: string): string | undefined {
  const value = facts.requestHeaders[name];
  return typeof value === 'string' ? value : undefined;
}

/** A copy of any bag's attributes, as an AttributeBag. */
export function bagOf(attributes: Bag): AttributeBag {
  if (attributes instanceof RequestAttributes) return attributes.bag().clone();
  if (attributes instanceof AttributeBag) return attributes.clone();
  const bag = new AttributeBag();
  for (const name of attributes.names()) bag.set(name, attributes.get(name)!);
  return bag;
}

/**
 * `request.headers` of a request, answering `get` from the facts and everything else from
 * the map buildRequestAttributes makes (requestHeaderPairs), made when first needed.
 */
class RequestHeaders implements StringMap {
  private whole: FlatStringMap | undefined;

  constructor(private readonly facts: HttpRequestFacts) {}

  get(key: string): string | undefined {
    const facts = this.facts;
    switch (key) {
      case ':authority':
        return facts.authority;
      case ':method':
        return facts.method;
      case ':path':
        return facts.url;
      case 'host':
        return undefined;
    }
    // Other pseudo-headers are not in the map; nor is anything the headers object inherits.
    if (key.charCodeAt(0) === 58 || !Object.hasOwn(facts.requestHeaders, key)) return undefined;
    const value = facts.requestHeaders[key];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number {
    return this.map().size;
  }

  forEach(callback: (value: string, key: string, map: ReadonlyMap<string, string>) => void): void {
    this.map().forEach((value, key) => callback(value, key, this));
  }

  keys(): MapIterator<string> {
    return this.map().keys();
  }

  values(): MapIterator<string> {
    return this.map().values();
  }

  entries(): MapIterator<[string, string]> {
    return this.map().entries();
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.map().entries();
  }

  /** The pairs in wire order, as FlatStringMap keeps them (encoders read these). */
  distinctPairs(): readonly string[] | undefined {
    return this.map().distinctPairs();
  }

  private map(): FlatStringMap {
    return (this.whole ??= new FlatStringMap(requestHeaderPairs(this.facts)));
  }
}
