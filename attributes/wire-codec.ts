/**
 * The attribute wire codec: CheckRequest and ReportRequest bytes to bags and back,
 * with Istio's global word dictionary. STUB: signatures only, implementation pending.
 */
import type { AttributeFinder } from './manifest';
import type { AttributeBag, Bag } from './bag';
import type { ReferencedAttributes } from './references';
import type { ReferencedAttributes as ReferencedAttributesMessage } from '../proto/generated/mixer/v1/mixer.pb';

/** One quota asked for in a Check. */
export interface QuotaRequest {
  readonly amount: bigint;
  readonly bestEffort: boolean;
}

/** A CheckRequest decoded for the dispatcher. */
export interface DecodedCheckRequest {
  readonly attributes: AttributeBag;
  readonly globalWordCount: number;
  readonly deduplicationId: string;
  readonly quotas: ReadonlyMap<string, QuotaRequest>;
}

/**
 * Decodes the bytes of an `istio.mixer.v1.CheckRequest`. Attributes are typed by the
 * manifest where it knows them, otherwise by the map they arrived in.
 * @throws AttributeDecodeError on malformed input (server answers INVALID_ARGUMENT)
 */
export function decodeCheckRequest(_bytes: Uint8Array, _manifest?: AttributeFinder): DecodedCheckRequest {
  throw new Error('not implemented');
}

/**
 * Decodes the bytes of an `istio.mixer.v1.ReportRequest` into one bag per attribute set,
 * applying delta encoding (each set modifies the one before) and `default_words`.
 * @throws AttributeDecodeError on malformed input
 */
export function decodeReportRequest(_bytes: Uint8Array, _manifest?: AttributeFinder): AttributeBag[] {
  throw new Error('not implemented');
}

/** Options of the encoders (the proxy's side). */
export interface EncodeOptions {
  /** How many words of the global dictionary to use; default: all of them. */
  readonly globalWordCount?: number;
}

/** Encodes a Check request as Istio's proxies did. */
export function encodeCheckRequest(
  _request: {
    readonly attributes: Bag;
    readonly deduplicationId?: string;
    readonly quotas?: ReadonlyMap<string, QuotaRequest>;
  },
  _options?: EncodeOptions,
): Uint8Array {
  throw new Error('not implemented');
}

/** Encodes a batch of reports, delta-encoded against the previous bag unless `independent`. */
export function encodeReportRequest(
  _bags: readonly Bag[],
  _options?: EncodeOptions & { readonly independent?: boolean },
): Uint8Array {
  throw new Error('not implemented');
}

/** Encodes referenced attributes for a CheckResponse, with message words for names outside the dictionary. */
export function encodeReferencedAttributes(
  _references: ReferencedAttributes,
  _options?: EncodeOptions,
): ReferencedAttributesMessage {
  throw new Error('not implemented');
}
