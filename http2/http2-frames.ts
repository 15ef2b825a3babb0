/**
 * HTTP/2 framing (RFC 9113 §4, §6, §7, §11.2) as our own HTTP/2 client and server use it:
 * frame types, flags, settings, error codes, and the writers of the frames it sends.
 */

/** RFC 9113 §3.4: the connection preface a client sends first. */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME_HEADER_BYTES = 9;

export const enum FrameType {
  Data = 0x0,
  Headers = 0x1,
  Priority = 0x2,
  RstStream = 0x3,
  Settings = 0x4,
  PushPromise = 0x5,
  Ping = 0x6,
  GoAway = 0x7,
  WindowUpdate = 0x8,
  Continuation = 0x9,
}

export const enum FrameFlag {
  /** On DATA and HEADERS. */
  EndStream = 0x1,
  /** On SETTINGS and PING: the same bit as END_STREAM (RFC 9113 §6.5, §6.7). */
  // eslint-disable-next-line @typescript-eslint/no-duplicate-enum-values
  Ack = 0x1,
  EndHeaders = 0x4,
  Padded = 0x8,
  Priority = 0x20,
}

export const enum Setting {
  HeaderTableSize = 0x1,
  EnablePush = 0x2,
  MaxConcurrentStreams = 0x3,
  InitialWindowSize = 0x4,
  MaxFrameSize = 0x5,
  MaxHeaderListSize = 0x6,
}

export const enum ErrorCode {
  NoError = 0x0,
  ProtocolError = 0x1,
  InternalError = 0x2,
  FlowControlError = 0x3,
  SettingsTimeout = 0x4,
  StreamClosed = 0x5,
  FrameSizeError = 0x6,
  RefusedStream = 0x7,
  Cancel = 0x8,
  CompressionError = 0x9,
  ConnectError = 0xa,
  EnhanceYourCalm = 0xb,
  InadequateSecurity = 0xc,
  Http11Required = 0xd,
}

const ERROR_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** `CANCEL`, or `0x42` for a code RFC 9113 does not name. */
export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

/** RFC 9113 §6.5.2 and §6.9.1: the defaults and bounds of the settings. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 16_777_215;
export const DEFAULT_INITIAL_WINDOW_SIZE = 65_535;
export const MAX_WINDOW_SIZE = 2 ** 31 - 1;

/** Writes a frame header at `pos` of `out`; returns the position after it. */
export function writeFrameHeader(
  out: Buffer,
  pos: number,
  length: number,
  type: FrameType,
  flags: number,
  streamId: number,
): number {
  out[pos] = length >>> 16;
  out[pos + 1] = (length >>> 8) & 0xff;
  out[pos + 2] = length & 0xff;
  out[pos + 3] = type;
  out[pos + 4] = flags;
  out.writeUInt32BE(streamId, pos + 5);
  return pos + FRAME_HEADER_BYTES;
}

/** A SETTINGS frame with `settings` (identifier, value pairs). */
export function settingsFrame(settings: readonly (readonly [Setting, number])[]): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6 * settings.length);
  let pos = writeFrameHeader(out, 0, 6 * settings.length, FrameType.Settings, 0, 0);
  for (const [id, value] of settings) {
    out.writeUInt16BE(id, pos);
    out.writeUInt32BE(value, pos + 2);
    pos += 6;
  }
  return out;
}

/** An empty SETTINGS frame with ACK. */
export const SETTINGS_ACK: Buffer = (() => {
  const out = Buffer.alloc(FRAME_HEADER_BYTES);
  writeFrameHeader(out, 0, 0, FrameType.Settings, FrameFlag.Ack, 0);
  return out;
})();

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, FrameType.WindowUpdate, 0, streamId);
  out.writeUInt32BE(increment, FRAME_HEADER_BYTES);
  return out;
}

export function rstStreamFrame(streamId: number, code: ErrorCode): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, FrameType.RstStream, 0, streamId);
  out.writeUInt32BE(code, FRAME_HEADER_BYTES);
  return out;
}

export function goAwayFrame(lastStreamId: number, code: ErrorCode, debug: string): Buffer {
  const text = Buffer.from(debug, 'utf8');
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8 + text.length);
  writeFrameHeader(out, 0, 8 + text.length, FrameType.GoAway, 0, 0);
  out.writeUInt32BE(lastStreamId, FRAME_HEADER_BYTES);
  out.writeUInt32BE(code, FRAME_HEADER_BYTES + 4);
  text.copy(out, FRAME_HEADER_BYTES + 8);
  return out;
}

/** A PING of our own (RFC 9113 §6.7): `payload`'s first 8 octets, which the ACK must echo. */
export function pingFrame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
  writeFrameHeader(out, 0, 8, FrameType.Ping, 0, 0);
  payload.copy(out, FRAME_HEADER_BYTES, 0, 8);
  return out;
}

/** The answer to a PING: its 8 octets, with ACK. */
export function pingAckFrame(payload: Buffer, offset: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
  writeFrameHeader(out, 0, 8, FrameType.Ping, FrameFlag.Ack, 0);
  payload.copy(out, FRAME_HEADER_BYTES, offset, offset + 8);
  return out;
}
