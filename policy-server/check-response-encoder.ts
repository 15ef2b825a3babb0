/**
 * The Check response on the wire: the bytes of `istio.mixer.v1.CheckResponse` for a
 * dispatcher outcome, written by hand, as the request decoder reads by hand
 * (attributes/wire-codec.ts). Building the generated message objects and encoding them cost
 * more than decoding a request three times larger. The generated code remains the reference:
 * the bytes are those of `mixer.CheckResponse.encode(toCheckResponse(outcome, count))`
 * (mixer-service.ts), as the tests check, and field numbers are those of proto/mixer/v1.
 *
 * Like the generated code, the encoder writes fields in the order the .proto declares them,
 * leaves out proto3 defaults (0, '', empty lists), and always writes the status, validity and
 * referenced attributes of the precondition and of each quota result, empty or not. The
 * referenced attributes, the largest part, are encoded once and copied into each quota result.
 *
 * It works in two passes: sizes first (every length prefix precedes its message), then one
 * exactly sized Buffer is written front to back.
 */
import { GLOBAL_DICTIONARY, GLOBAL_WORD_INDEX, Presence, type ReferencedAttributes } from '../attributes';
import type { Status } from '../templates';
import type { CheckOutcome, HeaderOperation, QuotaOutcome } from './dispatcher';

// Tags: field number << 3 | wire type (0 varint, 2 length-delimited).
/** CheckResponse.precondition (2), quotas (3, map entries: key 1, value 2). */
const RESPONSE_PRECONDITION = 0x12;
const RESPONSE_QUOTA_ENTRY = 0x1a;
const ENTRY_KEY = 0x0a;
const ENTRY_VALUE = 0x12;
/** PreconditionResult: status 1, valid_duration 2, valid_use_count 3, referenced_attributes 5, route_directive 6. */
const PRECONDITION_STATUS = 0x0a;
const PRECONDITION_VALID_DURATION = 0x12;
const PRECONDITION_VALID_USE_COUNT = 0x18;
const PRECONDITION_REFERENCED = 0x2a;
const PRECONDITION_ROUTE = 0x32;
/** QuotaResult: valid_duration 1, granted_amount 2, status 6, referenced_attributes 5 (in that order). */
const QUOTA_VALID_DURATION = 0x0a;
const QUOTA_GRANTED_AMOUNT = 0x10;
const QUOTA_STATUS = 0x32;
const QUOTA_REFERENCED = 0x2a;
/** google.rpc.Status: code 1, message 2. */
const STATUS_CODE = 0x08;
const STATUS_MESSAGE = 0x12;
/** google.protobuf.Duration: seconds 1, nanos 2. */
const DURATION_SECONDS = 0x08;
const DURATION_NANOS = 0x10;
/** ReferencedAttributes: words 1, attribute_matches 2; AttributeMatch: name 1, condition 2, map_key 4. */
const REFERENCED_WORD = 0x0a;
const REFERENCED_MATCH = 0x12;
const MATCH_NAME = 0x08;
const MATCH_CONDITION = 0x10;
const MATCH_MAP_KEY = 0x20;
/** RouteDirective: request_header_operations 1, response_header_operations 2. */
const ROUTE_REQUEST_OPERATION = 0x0a;
const ROUTE_RESPONSE_OPERATION = 0x12;
/** HeaderOperation: name 1, value 2, operation 3. */
const OPERATION_NAME = 0x0a;
const OPERATION_VALUE = 0x12;
const OPERATION_KIND = 0x18;

/** HeaderOperation.Operation; REPLACE (0) is the default and not written. */
const OPERATION_NUMBERS = { REPLACE: 0, REMOVE: 1, APPEND: 2 } as const;

/** ReferencedAttributes.Condition. */
const CONDITION_ABSENCE = 1;
const CONDITION_EXACT = 2;

// Copies of imports used per reference: in the CommonJS output, what attributes/index.ts
// re-exports is read through a getter at every use.
const globalWordIndex = GLOBAL_WORD_INDEX;
const ABSENCE = Presence.ABSENCE;

const INT64_MAX = 2n ** 63n - 1n;

/** Strings this short and ASCII are copied in a loop; longer ones through Buffer#write. */
const SHORT_STRING = 48;

/** Message words are found by scanning the list up to this many, then through a map. */
const SCANNED_WORDS = 16;

/**
 * Scratch state of the references pass, kept between calls so that a Check allocates no
 * arrays for it (and does not pay for truncating them: counts say how much is in use).
 * Encoding is synchronous and never re-entered, so one set serves every call.
 */
const words: string[] = [];
const wordLengths: number[] = [];
let wordCount = 0;
/** The message words by index, once there are more than SCANNED_WORDS of them. */
const wordIndices = new Map<string, number>();
/** Per attribute match: name index, map-key index (0: none), condition, in list() order. */
let matches = new Int32Array(3 * 64);
let matchCount = 0;

/**
 * The exact bytes of the CheckResponse for an outcome.
 *
 * Called by the Check method once the dispatcher has answered; the result is a Buffer of its
 * own length (possibly a slice of Node's shared allocation pool), ready to be framed.
 *
 * @param outcome what the dispatcher decided
 * @param globalWordCount the request's `global_word_count`: referenced attribute names and
 *   map keys among the first that many global words go as indices, the rest as the
 *   response's own words (0: the client uses no global words)
 * @throws RangeError for a `globalWordCount` that is not an integer from 0 to the global
 *   dictionary's length, a status code or use count that is not an int32, a duration whose
 *   seconds do not fit in an int64 (or is not a number), or a granted amount that does not
 *   fit in an int64: faults, which the generated encoder refused too
 */
export function encodeCheckResponse(outcome: CheckOutcome, globalWordCount: number): Buffer {
  checkGlobalWordCount(globalWordCount);
  const referencedSize = indexReferences(outcome.references, globalWordCount);

  const statusSize = statusBodySize(outcome.status);
  const durationSize = durationBodySize(outcome.validDurationMs);
  checkInt32(outcome.validUseCount, 'valid use count');
  const requestOperations = outcome.requestHeaderOperations;
  const responseOperations = outcome.responseHeaderOperations;
  const hasRoute = requestOperations.length > 0 || responseOperations.length > 0;
  const routeSize = hasRoute ? operationsSize(requestOperations) + operationsSize(responseOperations) : 0;
  const preconditionSize =
    fieldSize(statusSize) +
    fieldSize(durationSize) +
    (outcome.validUseCount === 0 ? 0 : 1 + int32Size(outcome.validUseCount)) +
    fieldSize(referencedSize) +
    (hasRoute ? fieldSize(routeSize) : 0);
  let size = fieldSize(preconditionSize);
  for (const [name, quota] of outcome.quotas) {
    size += fieldSize(quotaEntrySize(name, quota, referencedSize));
  }

  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  out[pos++] = RESPONSE_PRECONDITION;
  pos = writeVarint32(out, pos, preconditionSize);
  out[pos++] = PRECONDITION_STATUS;
  pos = writeVarint32(out, pos, statusSize);
  pos = writeStatus(out, pos, outcome.status);
  out[pos++] = PRECONDITION_VALID_DURATION;
  pos = writeVarint32(out, pos, durationSize);
  pos = writeDuration(out, pos, outcome.validDurationMs);
  if (outcome.validUseCount !== 0) {
    out[pos++] = PRECONDITION_VALID_USE_COUNT;
    pos = writeInt32(out, pos, outcome.validUseCount);
  }
  out[pos++] = PRECONDITION_REFERENCED;
  pos = writeVarint32(out, pos, referencedSize);
  const referencedStart = pos;
  pos = writeReferences(out, pos);
  if (hasRoute) {
    out[pos++] = PRECONDITION_ROUTE;
    pos = writeVarint32(out, pos, routeSize);
    pos = writeOperations(out, pos, ROUTE_REQUEST_OPERATION, requestOperations);
    pos = writeOperations(out, pos, ROUTE_RESPONSE_OPERATION, responseOperations);
  }
  for (const [name, quota] of outcome.quotas) {
    out[pos++] = RESPONSE_QUOTA_ENTRY;
    pos = writeVarint32(out, pos, quotaEntrySize(name, quota, referencedSize));
    pos = writeQuotaEntry(out, pos, name, quota, referencedStart, referencedSize);
  }
  // The Buffer may come from the shared pool: a byte left unwritten would leak old memory.
  if (pos !== size) throw new Error(`CheckResponse encoder: wrote ${pos} bytes of ${size}`);
  return out;
}

function checkGlobalWordCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > GLOBAL_DICTIONARY.length) {
    throw new RangeError(
      `globalWordCount must be an integer from 0 to ${GLOBAL_DICTIONARY.length}, got ${count}`,
    );
  }
}

// --- Referenced attributes -------------------------------------------------------------

/**
 * First pass over the references: the index of every name and map key (global words below
 * `globalWordCount`, else the response's own words, numbered -1, -2, … in order of first use)
 * into the scratch state, as encodeReferencedAttributes assigns them. Returns the size of
 * the ReferencedAttributes message.
 */
function indexReferences(references: ReferencedAttributes, globalWordCount: number): number {
  wordCount = 0;
  // Map#clear allocates a new table even for an empty map.
  if (wordIndices.size !== 0) wordIndices.clear();
  matchCount = 0;
  let size = 0;
  for (const [name, presence] of references.attributePresences) {
    size += addMatch(wordIndex(name, globalWordCount), 0, presence);
  }
  for (const [name, keys] of references.mapKeyPresences) {
    const nameIndex = wordIndex(name, globalWordCount);
    for (const [key, presence] of keys) {
      // map_key 0 means "no key": a key that is global word 0 goes to the message words.
      let keyIndex = wordIndex(key, globalWordCount);
      if (keyIndex === 0) keyIndex = messageWordIndex(key);
      size += addMatch(nameIndex, keyIndex, presence);
    }
  }
  for (let i = 0; i < wordCount; i++) size += 1 + varint32Size(wordLengths[i]!) + wordLengths[i]!;
  return size;
}

/** Records one attribute match; returns its size as a field of ReferencedAttributes. */
function addMatch(nameIndex: number, keyIndex: number, presence: Presence): number {
  if (3 * matchCount === matches.length) {
    const grown = new Int32Array(matches.length * 2);
    grown.set(matches);
    matches = grown;
  }
  const condition = presence === ABSENCE ? CONDITION_ABSENCE : CONDITION_EXACT;
  const at = 3 * matchCount++;
  matches[at] = nameIndex;
  matches[at + 1] = keyIndex;
  matches[at + 2] = condition;
  const body =
    (nameIndex === 0 ? 0 : 1 + varint32Size(zigZag(nameIndex))) +
    2 + // condition, 1 or 2
    (keyIndex === 0 ? 0 : 1 + varint32Size(zigZag(keyIndex)));
  return 1 + varint32Size(body) + body;
}

function wordIndex(word: string, globalWordCount: number): number {
  const global = globalWordIndex.get(word);
  if (global !== undefined && global < globalWordCount) return global;
  return messageWordIndex(word);
}

/** The word's index among the response's own words, added when new. */
function messageWordIndex(word: string): number {
  const count = wordCount;
  if (count <= SCANNED_WORDS) {
    // A few words, as usual: a scan beats hashing.
    for (let i = 0; i < count; i++) if (words[i] === word) return -(i + 1);
  } else {
    const index = wordIndices.get(word);
    if (index !== undefined) return index;
  }
  words[count] = word;
  wordLengths[count] = utf8Length(word);
  wordCount = count + 1;
  if (count === SCANNED_WORDS) {
    for (let i = 0; i <= count; i++) wordIndices.set(words[i]!, -(i + 1));
  } else if (count > SCANNED_WORDS) {
    wordIndices.set(word, -wordCount);
  }
  return -wordCount;
}

/** Second pass: the ReferencedAttributes message's fields, from the scratch state. */
function writeReferences(out: Buffer, pos: number): number {
  for (let i = 0; i < wordCount; i++) {
    out[pos++] = REFERENCED_WORD;
    pos = writeVarint32(out, pos, wordLengths[i]!);
    pos = writeString(out, pos, words[i]!, wordLengths[i]!);
  }
  for (let at = 0; at < 3 * matchCount; at += 3) {
    const name = zigZag(matches[at]!);
    const key = zigZag(matches[at + 1]!);
    out[pos++] = REFERENCED_MATCH;
    pos = writeVarint32(
      out,
      pos,
      (name === 0 ? 0 : 1 + varint32Size(name)) + 2 + (key === 0 ? 0 : 1 + varint32Size(key)),
    );
    if (name !== 0) {
      out[pos++] = MATCH_NAME;
      pos = writeVarint32(out, pos, name);
    }
    out[pos++] = MATCH_CONDITION;
    out[pos++] = matches[at + 2]!;
    if (key !== 0) {
      out[pos++] = MATCH_MAP_KEY;
      pos = writeVarint32(out, pos, key);
    }
  }
  return pos;
}

/** sint32's encoding of a word index, as an unsigned 32-bit number. */
function zigZag(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

// --- Quotas -----------------------------------------------------------------------------

/** Size of one CheckResponse.quotas entry: its key and its QuotaResult. */
function quotaEntrySize(name: string, quota: QuotaOutcome, referencedSize: number): number {
  const nameLength = utf8Length(name);
  return (nameLength === 0 ? 0 : fieldSize(nameLength)) + fieldSize(quotaResultSize(quota, referencedSize));
}

function quotaResultSize(quota: QuotaOutcome, referencedSize: number): number {
  return (
    fieldSize(durationBodySize(quota.validDurationMs)) +
    (quota.grantedAmount === 0n ? 0 : 1 + int64Size(quota.grantedAmount)) +
    fieldSize(statusBodySize(quota.status)) +
    fieldSize(referencedSize)
  );
}

function writeQuotaEntry(
  out: Buffer,
  pos: number,
  name: string,
  quota: QuotaOutcome,
  referencedStart: number,
  referencedSize: number,
): number {
  const nameLength = utf8Length(name);
  if (nameLength !== 0) {
    out[pos++] = ENTRY_KEY;
    pos = writeVarint32(out, pos, nameLength);
    pos = writeString(out, pos, name, nameLength);
  }
  out[pos++] = ENTRY_VALUE;
  pos = writeVarint32(out, pos, quotaResultSize(quota, referencedSize));
  out[pos++] = QUOTA_VALID_DURATION;
  pos = writeVarint32(out, pos, durationBodySize(quota.validDurationMs));
  pos = writeDuration(out, pos, quota.validDurationMs);
  if (quota.grantedAmount !== 0n) {
    out[pos++] = QUOTA_GRANTED_AMOUNT;
    pos = writeInt64(out, pos, quota.grantedAmount);
  }
  out[pos++] = QUOTA_STATUS;
  pos = writeVarint32(out, pos, statusBodySize(quota.status));
  pos = writeStatus(out, pos, quota.status);
  out[pos++] = QUOTA_REFERENCED;
  pos = writeVarint32(out, pos, referencedSize);
  // copyWithin, not Buffer#copy: no argument checking in JavaScript for a copy this short.
  out.copyWithin(pos, referencedStart, referencedStart + referencedSize);
  return pos + referencedSize;
}

// --- Status, Duration, RouteDirective ---------------------------------------------------

function statusBodySize(status: Status): number {
  checkInt32(status.code, 'status code');
  const messageLength = utf8Length(status.message);
  return (
    (status.code === 0 ? 0 : 1 + int32Size(status.code)) +
    (messageLength === 0 ? 0 : fieldSize(messageLength))
  );
}

function writeStatus(out: Buffer, pos: number, status: Status): number {
  if (status.code !== 0) {
    out[pos++] = STATUS_CODE;
    pos = writeInt32(out, pos, status.code);
  }
  const messageLength = utf8Length(status.message);
  if (messageLength !== 0) {
    out[pos++] = STATUS_MESSAGE;
    pos = writeVarint32(out, pos, messageLength);
    pos = writeString(out, pos, status.message, messageLength);
  }
  return pos;
}

/**
 * A validity in milliseconds as a Duration, as mixer-service's durationFromMillis makes it:
 * rounded to a whole millisecond, negative as 0.
 */
function wholeMillis(ms: number): number {
  const whole = Math.max(0, Math.round(ms));
  if (!Number.isFinite(whole)) throw new RangeError(`a validity of ${ms} ms is not a duration`);
  return whole;
}

function durationBodySize(ms: number): number {
  const whole = wholeMillis(ms);
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole % 1000) * 1_000_000;
  return (seconds === 0 ? 0 : 1 + uint64Size(seconds)) + (nanos === 0 ? 0 : 1 + varint32Size(nanos));
}

function writeDuration(out: Buffer, pos: number, ms: number): number {
  const whole = wholeMillis(ms);
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole % 1000) * 1_000_000;
  if (seconds !== 0) {
    out[pos++] = DURATION_SECONDS;
    pos = writeUint64(out, pos, seconds);
  }
  if (nanos !== 0) {
    out[pos++] = DURATION_NANOS;
    pos = writeVarint32(out, pos, nanos);
  }
  return pos;
}

function operationsSize(operations: readonly HeaderOperation[]): number {
  let size = 0;
  for (const operation of operations) size += fieldSize(operationBodySize(operation));
  return size;
}

function operationBodySize(operation: HeaderOperation): number {
  const nameLength = utf8Length(operation.name);
  const valueLength = utf8Length(operation.value);
  return (
    (nameLength === 0 ? 0 : fieldSize(nameLength)) +
    (valueLength === 0 ? 0 : fieldSize(valueLength)) +
    (operation.operation === 'REPLACE' ? 0 : 2)
  );
}

function writeOperations(
  out: Buffer,
  pos: number,
  tag: number,
  operations: readonly HeaderOperation[],
): number {
  for (const operation of operations) {
    out[pos++] = tag;
    pos = writeVarint32(out, pos, operationBodySize(operation));
    const nameLength = utf8Length(operation.name);
    if (nameLength !== 0) {
      out[pos++] = OPERATION_NAME;
      pos = writeVarint32(out, pos, nameLength);
      pos = writeString(out, pos, operation.name, nameLength);
    }
    const valueLength = utf8Length(operation.value);
    if (valueLength !== 0) {
      out[pos++] = OPERATION_VALUE;
      pos = writeVarint32(out, pos, valueLength);
      pos = writeString(out, pos, operation.value, valueLength);
    }
    if (operation.operation !== 'REPLACE') {
      out[pos++] = OPERATION_KIND;
      out[pos++] = OPERATION_NUMBERS[operation.operation];
    }
  }
  return pos;
}

// --- Scalars ----------------------------------------------------------------------------

/** Size of a length-delimited field (tag, length, body) whose body has `size` bytes. */
function fieldSize(size: number): number {
  return 1 + varint32Size(size) + size;
}

function varint32Size(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Writes an unsigned 32-bit number as a varint. */
function writeVarint32(out: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  return pos;
}

function checkInt32(n: number, what: string): void {
  if ((n | 0) !== n) throw new RangeError(`the ${what} ${n} is not an int32`);
}

/** A negative int32 goes as its 64-bit two's complement: ten bytes. */
function int32Size(n: number): number {
  return n < 0 ? 10 : varint32Size(n);
}

function writeInt32(out: Buffer, pos: number, n: number): number {
  if (n >= 0) return writeVarint32(out, pos, n);
  return writeBigVarint(out, pos, BigInt.asUintN(64, BigInt(n)));
}

/** Duration seconds: a whole, non-negative number; exact in a double beyond 2^53 too. */
function uint64Size(n: number): number {
  if (n < 0x10000000) return varint32Size(n);
  return bigVarintSize(checkedInt64(BigInt(n), 'duration seconds'));
}

function writeUint64(out: Buffer, pos: number, n: number): number {
  if (n < 0x10000000) return writeVarint32(out, pos, n);
  return writeBigVarint(out, pos, BigInt(n));
}

function int64Size(n: bigint): number {
  checkedInt64(n, 'granted amount');
  return n >= 0n && n < 0x10000000n ? varint32Size(Number(n)) : bigVarintSize(BigInt.asUintN(64, n));
}

function writeInt64(out: Buffer, pos: number, n: bigint): number {
  if (n >= 0n && n < 0x10000000n) return writeVarint32(out, pos, Number(n));
  return writeBigVarint(out, pos, BigInt.asUintN(64, n));
}

function checkedInt64(n: bigint, what: string): bigint {
  if (n > INT64_MAX || n < -INT64_MAX - 1n) throw new RangeError(`the ${what} ${n} does not fit in an int64`);
  return n;
}

function bigVarintSize(n: bigint): number {
  let size = 1;
  while (n > 0x7fn) {
    n >>= 7n;
    size++;
  }
  return size;
}

function writeBigVarint(out: Buffer, pos: number, n: bigint): number {
  while (n > 0x7fn) {
    out[pos++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  out[pos++] = Number(n);
  return pos;
}

/** UTF-8 length: the string's length when it is ASCII, as most names and messages are. */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  }
  return s.length;
}

/** Writes a string of `byteLength` UTF-8 bytes (lone surrogates as U+FFFD, as TextEncoder). */
function writeString(out: Buffer, pos: number, s: string, byteLength: number): number {
  if (byteLength === s.length && byteLength <= SHORT_STRING) {
    // ASCII (any other character takes more than one byte): cheaper than a call into C++.
    for (let i = 0; i < byteLength; i++) out[pos + i] = s.charCodeAt(i);
    return pos + byteLength;
  }
  return pos + out.write(s, pos, byteLength, 'utf8');
}
