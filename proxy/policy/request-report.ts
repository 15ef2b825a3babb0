/**
 * The Report set of a completed HTTP request, written straight from the request's facts into
 * a Report batch: a {@link ReportSetWriter} for the batch encoder. No attribute bag and no
 * value objects are made, and the delta against the set before is taken on plain fields —
 * a request head's text stands for the request's headers, an address for its IP, a number
 * of milliseconds for a timestamp.
 *
 * It writes the attributes completedRequestAttributes (request-attributes.ts) builds, with the
 * same values, plus what the check added to its bag (`check.cache_hit`, `quota.cache_hit`,
 * `check.error_code`, `check.error_message`). test/proxy/policy/request-report.test.ts holds
 * the two to that: decoded, every set equals the bag.
 */
import { WireType } from '@bufbuild/protobuf/wire';
import {
  GLOBAL_WORD_INDEX,
  isStringMap,
  WireField,
  type Bag,
  type AttributeValue,
  type IpAddress,
  type MessageWords,
  type ProtoWriter,
  type ReportSetWriter,
  type StringMap,
} from '../../attributes';
import {
  appendHeaderPairs,
  durationNanos,
  hostOf,
  ipOf,
  nanosAfter,
  nodeAttributesOf,
  queryPairs,
  requestHeaderPairs,
  type NodeAttribute,
} from '../attribute-builder';
import type { HeaderOperations } from '../config-model';
import { RESPONSE_FLAGS, type HttpRequestFacts } from '../traffic-facts';

/** How a slot's plain value is compared and written. */
const enum Kind {
  /** A string. */
  STRING,
  /** A number (or, from a check's bag, a bigint). */
  INT,
  BOOL,
  /** Milliseconds since the epoch. */
  TIME,
  /** Whole nanoseconds. */
  DURATION,
  /** An IpAddress (one object per address while remembered, see ipOf). */
  IP,
  /** Header text standing for its pairs, or the pairs (names and values alternating). */
  MAP,
}

/** The attributes of a request's set, but the node's (see nodeAttributesOf), in slot order. */
const SLOTS: readonly (readonly [name: string, kind: Kind])[] = [
  ['request.headers', Kind.MAP],
  ['request.id', Kind.STRING],
  ['request.host', Kind.STRING],
  ['request.method', Kind.STRING],
  ['request.path', Kind.STRING],
  ['request.url_path', Kind.STRING],
  ['request.query_params', Kind.MAP],
  ['request.scheme', Kind.STRING],
  ['request.time', Kind.TIME],
  ['request.useragent', Kind.STRING],
  ['request.referer', Kind.STRING],
  ['context.protocol', Kind.STRING],
  ['api.operation', Kind.STRING],
  ['source.ip', Kind.IP],
  ['destination.ip', Kind.IP],
  ['destination.port', Kind.INT],
  ['destination.service.name', Kind.STRING],
  ['destination.service.host', Kind.STRING],
  ['request.size', Kind.INT],
  ['response.code', Kind.INT],
  ['response.size', Kind.INT],
  ['response.time', Kind.TIME],
  ['response.duration', Kind.DURATION],
  ['response.headers', Kind.MAP],
  ['response.grpc_status', Kind.STRING],
  ['response.grpc_message', Kind.STRING],
  ['context.proxy_error_code', Kind.STRING],
  ['context.time', Kind.TIME],
  ['check.cache_hit', Kind.BOOL],
  ['quota.cache_hit', Kind.BOOL],
  ['check.error_code', Kind.INT],
  ['check.error_message', Kind.STRING],
];

/** Slot numbers, in SLOTS' order. */
const enum S {
  requestHeaders,
  requestId,
  requestHost,
  requestMethod,
  requestPath,
  requestUrlPath,
  requestQueryParams,
  requestScheme,
  requestTime,
  requestUseragent,
  requestReferer,
  contextProtocol,
  apiOperation,
  sourceIp,
  destinationIp,
  destinationPort,
  destinationServiceName,
  destinationServiceHost,
  requestSize,
  responseCode,
  responseSize,
  responseTime,
  responseDuration,
  responseHeaders,
  responseGrpcStatus,
  responseGrpcMessage,
  contextProxyErrorCode,
  contextTime,
  checkCacheHit,
  quotaCacheHit,
  checkErrorCode,
  checkErrorMessage,
  COUNT,
}

const NAMES = SLOTS.map(([name]) => name);
const KINDS = SLOTS.map(([, kind]) => kind);
const GLOBAL_INDICES = NAMES.map((name) => GLOBAL_WORD_INDEX.get(name));
/** The check's attributes, read from its bag: slot and name. */
const CHECK_SLOTS: readonly (readonly [S, string])[] = [
  [S.checkCacheHit, 'check.cache_hit'],
  [S.quotaCacheHit, 'quota.cache_hit'],
  [S.checkErrorCode, 'check.error_code'],
  [S.checkErrorMessage, 'check.error_message'],
];

type Plain = string | number | bigint | boolean | IpAddress | readonly string[] | undefined;

const LENGTH = WireType.LengthDelimited;
const VARINT = WireType.Varint;

/**
 * Writes completed requests into Report batches. Give it one request with {@link prepare},
 * hand it to the batch encoder's `add` (which calls {@link writeSet}; the sender adds it to a
 * new batch when the open one refuses it), then {@link release} it.
 */
export class RequestReportWriter implements ReportSetWriter {
  private facts: HttpRequestFacts | undefined;
  private checked: Bag | undefined;
  /** The last set written, slot by slot, and the one being written. */
  private previous: Plain[] = new Array<Plain>(S.COUNT);
  private current: Plain[] = new Array<Plain>(S.COUNT);
  /** `current` holds the prepared request's values (read, then refused by a batch). */
  private currentRead = false;
  private previousNode: readonly NodeAttribute[] | undefined;
  private previousResponseOps: HeaderOperations | undefined;
  private previousResponseClose = false;
  private currentResponseOps: HeaderOperations | undefined;
  private currentResponseClose = false;
  /** The last lookups, for the next request, which most likely repeats them. */
  private last = {
    node: undefined as HttpRequestFacts['node'] | undefined,
    role: undefined as HttpRequestFacts['role'] | undefined,
    nodeAttributes: [] as readonly NodeAttribute[],
    authority: '',
    host: '',
    remoteAddress: '',
    remoteIp: undefined as IpAddress | undefined,
    otherAddress: '',
    otherIp: undefined as IpAddress | undefined,
  };

  /** The request the next writeSet writes; `checked` is the bag its check was given, if any. */
  prepare(facts: HttpRequestFacts, checked: Bag | undefined): this {
    this.facts = facts;
    this.checked = checked;
    this.currentRead = false;
    return this;
  }

  /** Forgets the request (the writer keeps only plain values of it). */
  release(): void {
    this.facts = undefined;
    this.checked = undefined;
  }

  writeSet(out: ProtoWriter, words: MessageWords, whole: boolean): boolean {
    const facts = this.facts;
    if (facts === undefined) throw new Error('RequestReportWriter.writeSet without a prepared request');
    const current = this.current;
    // A request the open batch refused comes again for the next batch: read once.
    if (!this.currentRead) {
      this.read(facts, current);
      this.currentRead = true;
    }
    const node = this.nodeAttributes(facts);
    const previous = this.previous;
    if (!whole && (removesAny(previous, current) || removesAnyNode(this.previousNode, node))) return false;
    for (let slot = 0; slot < S.COUNT; slot++) {
      const value = current[slot];
      if (value === undefined) continue;
      if (!whole && this.same(slot, value, previous[slot])) continue;
      this.writeSlot(out, words, slot, value, facts);
    }
    if (whole || node !== this.previousNode) {
      for (const attribute of node) writeNodeAttribute(out, words, attribute);
    }
    this.previous = current;
    this.current = previous;
    this.currentRead = false;
    this.previousNode = node;
    this.previousResponseOps = this.currentResponseOps;
    this.previousResponseClose = this.currentResponseClose;
    return true;
  }

  /** The plain value of every slot; undefined where the request has no such attribute. */
  private read(facts: HttpRequestFacts, into: Plain[]): void {
    const received = facts.receivedRequestHead;
    into[S.requestHeaders] = received ?? requestHeaderPairs(facts);
    into[S.requestId] = facts.requestId;
    into[S.requestHost] = facts.authority;
    into[S.requestMethod] = facts.method;
    into[S.requestPath] = facts.url;
    into[S.requestUrlPath] = facts.urlPath;
    // The query is part of the head's text, so its text stands for its pairs likewise.
    into[S.requestQueryParams] = facts.query;
    into[S.requestScheme] = facts.secure ? 'https' : 'http';
    into[S.requestTime] = facts.startTimeMs;
    if (received !== undefined && received === this.previous[S.requestHeaders]) {
      // The same head: the same fields.
      into[S.requestUseragent] = this.previous[S.requestUseragent];
      into[S.requestReferer] = this.previous[S.requestReferer];
    } else {
      const userAgent = facts.requestHeaders['user-agent'];
      into[S.requestUseragent] = typeof userAgent === 'string' ? userAgent : undefined;
      const referer = facts.requestHeaders['referer'];
      into[S.requestReferer] = typeof referer === 'string' ? referer : undefined;
    }
    into[S.contextProtocol] = facts.protocol;
    into[S.apiOperation] = facts.routeName;
    const last = this.last;
    if (facts.remoteAddress !== last.remoteAddress) {
      last.remoteAddress = facts.remoteAddress;
      last.remoteIp = ipOf(facts.remoteAddress);
    }
    into[S.sourceIp] = last.remoteIp;
    if (facts.authority !== last.authority) {
      last.authority = facts.authority;
      last.host = hostOf(facts.authority);
    }
    const outbound = facts.role === 'outbound';
    if (outbound) {
      const host = facts.endpointHost;
      into[S.destinationIp] = host === undefined ? undefined : this.otherIp(host);
      into[S.destinationPort] = host === undefined ? undefined : (facts.endpointPort ?? 0);
      into[S.destinationServiceName] = facts.clusterName;
      into[S.destinationServiceHost] = facts.clusterName === undefined ? undefined : last.host;
    } else {
      into[S.destinationIp] = this.otherIp(facts.localAddress);
      into[S.destinationPort] = facts.localPort;
      into[S.destinationServiceName] = undefined;
      into[S.destinationServiceHost] = last.host;
    }
    into[S.requestSize] = facts.requestBytes;
    into[S.responseCode] = facts.status;
    into[S.responseSize] = facts.responseBytes;
    const endTimeMs = facts.startTimeMs + facts.durationMs;
    into[S.responseTime] = endTimeMs;
    into[S.responseDuration] = durationNanos(facts.durationMs);
    const forwarded = facts.forwardedResponseHead;
    if (forwarded !== undefined) {
      into[S.responseHeaders] = forwarded;
      this.currentResponseOps = facts.forwardedResponseOps;
      this.currentResponseClose = facts.forwardedResponseClose;
    } else {
      const headers = facts.responseHeaders;
      let pairs: string[] | undefined;
      if (headers !== undefined) appendHeaderPairs((pairs = []), headers, false);
      into[S.responseHeaders] = pairs;
      this.currentResponseOps = undefined;
      this.currentResponseClose = false;
    }
    into[S.responseGrpcStatus] = facts.grpcStatus;
    into[S.responseGrpcMessage] = facts.grpcMessage;
    into[S.contextProxyErrorCode] = facts.reason === undefined ? undefined : RESPONSE_FLAGS[facts.reason];
    into[S.contextTime] = endTimeMs;
    const checked = this.checked;
    for (const [slot, name] of CHECK_SLOTS)
      into[slot] = checked === undefined ? undefined : plainOf(checked.get(name));
  }

  private nodeAttributes(facts: HttpRequestFacts): readonly NodeAttribute[] {
    const last = this.last;
    if (facts.node !== last.node || facts.role !== last.role) {
      last.node = facts.node;
      last.role = facts.role;
      last.nodeAttributes = nodeAttributesOf(facts.node, facts.role);
    }
    return last.nodeAttributes;
  }

  /** The destination's IP: the listener's address inbound, the endpoint's outbound. */
  private otherIp(address: string): IpAddress | undefined {
    const last = this.last;
    if (address !== last.otherAddress) {
      last.otherAddress = address;
      last.otherIp = ipOf(address);
    }
    return last.otherIp;
  }

  /** Whether `value` encodes as `before` did (so a delta may leave it out). */
  private same(slot: number, value: Plain, before: Plain): boolean {
    if (value === before) {
      return slot !== S.responseHeaders || typeof value !== 'string' || this.sameResponseTerms();
    }
    if (KINDS[slot] !== Kind.MAP || typeof value === 'string' || typeof before !== 'object') return false;
    const a = value as readonly string[];
    const b = before as readonly string[];
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  private sameResponseTerms(): boolean {
    return (
      this.currentResponseOps === this.previousResponseOps &&
      this.currentResponseClose === this.previousResponseClose
    );
  }

  private writeSlot(
    out: ProtoWriter,
    words: MessageWords,
    slot: number,
    value: Plain,
    facts: HttpRequestFacts,
  ): void {
    const key = words.indexKnown(NAMES[slot]!, GLOBAL_INDICES[slot]);
    switch (KINDS[slot]) {
      case Kind.STRING:
        writeString(out, words, key, value as string);
        return;
      case Kind.INT:
        writeVarintEntry(out, WireField.INT64S, key, value as number | bigint);
        return;
      case Kind.BOOL:
        writeVarintEntry(out, WireField.BOOLS, key, value === true ? 1 : 0);
        return;
      case Kind.TIME: {
        const ms = value as number;
        const seconds = Math.floor(ms / 1000);
        writeSecondsAndNanos(out, WireField.TIMESTAMPS, key, seconds, nanosAfter(ms, seconds));
        return;
      }
      case Kind.DURATION: {
        const nanos = value as number;
        const seconds = Math.trunc(nanos / 1e9);
        writeSecondsAndNanos(out, WireField.DURATIONS, key, seconds, nanos - seconds * 1e9);
        return;
      }
      case Kind.IP: {
        const entry = out.tag(WireField.BYTES, LENGTH).fork();
        out
          .tag(1, VARINT)
          .sint32(key)
          .tag(2, LENGTH)
          .bytes((value as IpAddress).bytes);
        out.join(entry);
        return;
      }
      case Kind.MAP:
        writeMap(
          out,
          words,
          key,
          typeof value === 'string' ? textPairs(slot, value, facts) : (value as string[]),
        );
        return;
    }
  }
}

/** The pairs a text stands for (see read). */
function textPairs(slot: number, text: string, facts: HttpRequestFacts): readonly string[] {
  if (slot === S.requestQueryParams) return queryPairs(text);
  if (slot === S.requestHeaders) return requestHeaderPairs(facts);
  const pairs: string[] = [];
  appendHeaderPairs(pairs, facts.responseHeaders ?? {}, false);
  return pairs;
}

/** Whether `next` lacks an attribute `previous` has. */
function removesAny(previous: readonly Plain[], next: readonly Plain[]): boolean {
  for (let slot = 0; slot < S.COUNT; slot++) {
    if (previous[slot] !== undefined && next[slot] === undefined) return true;
  }
  return false;
}

function removesAnyNode(
  previous: readonly NodeAttribute[] | undefined,
  next: readonly NodeAttribute[],
): boolean {
  if (previous === undefined || previous === next) return false;
  return previous.some((attribute) => !next.some((other) => other.name === attribute.name));
}

/** A check's attribute as a plain value; undefined for kinds a check does not set. */
function plainOf(value: AttributeValue | undefined): Plain {
  switch (typeof value) {
    case 'string':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return value;
    default:
      throw new TypeError(`a check's attribute of this kind cannot be reported: ${String(value)}`);
  }
}

function writeNodeAttribute(out: ProtoWriter, words: MessageWords, attribute: NodeAttribute): void {
  const key = words.indexKnown(attribute.name, attribute.index);
  const value = attribute.value;
  if (typeof value === 'string') {
    writeString(out, words, key, value);
  } else if (typeof value === 'object' && isStringMap(value)) {
    const pairs: string[] = [];
    for (const [name, text] of (value as StringMap).entries()) pairs.push(name, text);
    writeMap(out, words, key, pairs);
  } else {
    throw new TypeError(`node attribute ${attribute.name}: a value of this kind cannot be reported`);
  }
}

function writeString(out: ProtoWriter, words: MessageWords, key: number, value: string): void {
  const entry = out.tag(WireField.STRINGS, LENGTH).fork();
  out.tag(1, VARINT).sint32(key).tag(2, VARINT).sint32(words.index(value));
  out.join(entry);
}

/** A map entry whose value is a varint: an int64, or a bool as 0 or 1. */
function writeVarintEntry(out: ProtoWriter, field: WireField, key: number, value: number | bigint): void {
  const entry = out.tag(field, LENGTH).fork();
  out.tag(1, VARINT).sint32(key).tag(2, VARINT).int64(value);
  out.join(entry);
}

function writeSecondsAndNanos(
  out: ProtoWriter,
  field: WireField,
  key: number,
  seconds: number,
  nanos: number,
): void {
  const entry = out.tag(field, LENGTH).fork();
  out.tag(1, VARINT).sint32(key);
  const message = out.tag(2, LENGTH).fork();
  if (seconds !== 0) out.tag(1, VARINT).int64(seconds);
  if (nanos !== 0) out.tag(2, VARINT).int32(nanos);
  out.join(message).join(entry);
}

function writeMap(out: ProtoWriter, words: MessageWords, key: number, pairs: readonly string[]): void {
  const entry = out.tag(WireField.STRING_MAPS, LENGTH).fork();
  out.tag(1, VARINT).sint32(key);
  const map = out.tag(2, LENGTH).fork();
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const pair = out.tag(1, LENGTH).fork();
    out
      .tag(1, VARINT)
      .sint32(words.index(pairs[i]!))
      .tag(2, VARINT)
      .sint32(words.index(pairs[i + 1]!));
    out.join(pair);
  }
  out.join(map).join(entry);
}
